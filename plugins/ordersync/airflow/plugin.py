"""ordersync's Airflow plugin: one FastAPI app under ``/ordersync`` in the API server, and the UI's entry to it.

The app serves the webhook receiver (``/ordersync/webhooks/{conn_id}``, :mod:`ordersync.airflow.webhooks`; signed
by the stores, no login) and the Order Sync page with its JSON API (``/ordersync/``, ``/ordersync/api/v1/…``,
:mod:`ordersync.airflow.page`; Airflow's login). An ``external_views`` entry adds **Order Sync** to the UI's
navigation: the UI shows ``/ordersync/`` in a frame at ``/plugin/ordersync``.

Every Airflow process imports plugins, so the app (FastAPI, the receiver, the page) is built only when the API
server asks for ``fastapi_apps``; importing this module costs the plugin class and nothing else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/ordersync"


@cache
def app() -> Any:
    from fastapi import FastAPI

    from ordersync.airflow import page
    from ordersync.airflow.webhooks import router

    web = FastAPI(
        title="ordersync",
        description=(
            "The Order Sync page's JSON API (Airflow login: the UI's session or a Bearer token from "
            "POST /auth/token) and the store webhooks for event-driven sync (signed by the stores; no login)."
        ),
        version="1",
    )
    web.include_router(router())
    web.include_router(page.router())  # last: it ends with the page's not-found route
    return web


class OrderSyncPlugin(AirflowPlugin):
    name = "ordersync"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": app(), "url_prefix": URL_PREFIX, "name": "ordersync"}]

    # the UI's navigation entry: Airflow frames href at /plugin/<url_route>
    external_views = [
        {
            "name": "Order Sync",
            "href": URL_PREFIX + "/",
            "url_route": "ordersync",
            "destination": "nav",
            "nav_top_level": True,
            "icon": URL_PREFIX + "/static/icon.svg",
            "icon_dark_mode": URL_PREFIX + "/static/icon-dark.svg",
        }
    ]
