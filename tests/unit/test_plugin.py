"""ordersync's Airflow plugin: found by Airflow's own loader in plugins/, light to import (every Airflow process
imports it), and its app serves the webhook receiver. The receiver inside the real API server is
tests/stack/test_event_driven.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support import ROOT


def test_airflows_plugin_loader_finds_ordersync_and_imports_nothing_heavy(tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(ROOT / "plugins")!r}]
        import airflow.plugins_manager  # Airflow's own import cost is not the plugin's
        from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory
        before = set(sys.modules)
        plugins, errors = _load_plugins_from_plugin_directory({str(ROOT / "plugins")!r})
        added = sorted(m for m in set(sys.modules) - before)
        print(json.dumps({{"plugins": [p.name for p in plugins], "errors": errors, "added": added}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["plugins"] == ["ordersync"] and found["errors"] == {}
    heavy = [
        m for m in found["added"] if m.split(".")[0] in ("fastapi", "sqlalchemy", "starlette", "requests")
    ]
    assert heavy == [], heavy
    assert not [m for m in found["added"] if m.startswith(("ordersync.airflow.webhooks", "ordersync.ledger"))]


def test_the_plugin_app_serves_the_receiver_under_ordersync():
    from ordersync.airflow.plugin import URL_PREFIX, OrderSyncPlugin

    (mounted,) = OrderSyncPlugin().fastapi_apps
    assert mounted["url_prefix"] == URL_PREFIX == "/ordersync"
    routes = {(r.path, tuple(sorted(r.methods))) for r in mounted["app"].routes if hasattr(r, "methods")}
    assert ("/webhooks/{conn_id}", ("POST",)) in routes


def test_the_plugin_app_serves_the_order_sync_page_and_its_api():
    from ordersync.airflow.plugin import OrderSyncPlugin

    (mounted,) = OrderSyncPlugin().fastapi_apps
    routes = {(r.path, tuple(sorted(r.methods))) for r in mounted["app"].routes if hasattr(r, "methods")}
    for route in [
        ("/", ("GET",)),
        ("/orders", ("GET",)),
        ("/orders/{ref:path}", ("GET",)),
        ("/orders/{ref:path}/sync", ("POST",)),
        ("/api/v1/orders", ("GET",)),
        ("/api/v1/orders/{ref:path}", ("GET",)),
        ("/api/v1/orders/{ref:path}/sync", ("POST",)),
        ("/api/v1/overview", ("GET",)),
        ("/static/{name}", ("GET",)),
    ]:
        assert route in routes, (route, sorted(routes))
    paths = [r.path for r in mounted["app"].routes if hasattr(r, "methods")]
    # the page's catch-all answers a 404 page: it must come after every other route (the receiver's too)
    assert paths[-1] == "/{anything:path}"
    assert paths.index("/webhooks/{conn_id}") < paths.index("/{anything:path}")
    # the sync route is matched before the order route swallows ".../sync" as part of the ref
    assert paths.index("/api/v1/orders/{ref:path}/sync") < paths.index("/api/v1/orders/{ref:path}")
    assert paths.index("/orders/{ref:path}/sync") < paths.index("/orders/{ref:path}")
    schema = mounted["app"].openapi()
    assert {"/api/v1/orders", "/api/v1/orders/{ref}", "/api/v1/orders/{ref}/sync", "/api/v1/overview"} <= set(
        schema["paths"]
    ), sorted(schema["paths"])
    assert not [p for p in schema["paths"] if not p.startswith(("/api/v1/", "/webhooks/"))]  # no HTML page


def test_the_plugin_adds_order_sync_to_the_ui_navigation():
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from ordersync.airflow.plugin import URL_PREFIX, OrderSyncPlugin

    (view,) = OrderSyncPlugin.external_views
    checked = ExternalViewResponse.model_validate(view)  # the shape the UI's plugins endpoint answers
    assert checked.name == "Order Sync"
    assert checked.href == URL_PREFIX + "/"
    assert checked.url_route == "ordersync"
    assert checked.destination == "nav" and checked.nav_top_level is True
    assert checked.icon and checked.icon.startswith(URL_PREFIX + "/static/")
