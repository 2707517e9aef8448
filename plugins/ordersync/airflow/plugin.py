"""ordersync's Airflow plugin: one FastAPI app under ``/ordersync`` in the API server.

Today it serves the webhook receiver (``/ordersync/webhooks/{conn_id}``, :mod:`ordersync.airflow.webhooks`).
Every Airflow process imports plugins, so the app (FastAPI and the receiver) is built only when the API server
asks for ``fastapi_apps``; importing this module costs the plugin class and nothing else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/ordersync"


@cache
def app() -> Any:
    from fastapi import FastAPI

    from ordersync.airflow.webhooks import router

    web = FastAPI(
        title="ordersync",
        description="Store webhooks for event-driven sync (signed by the stores; no Airflow login).",
        version="1",
    )
    web.include_router(router())
    return web


class OrderSyncPlugin(AirflowPlugin):
    name = "ordersync"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": app(), "url_prefix": URL_PREFIX, "name": "ordersync"}]
