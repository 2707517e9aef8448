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
