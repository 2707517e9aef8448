"""The operator's first command: ``airflow dags test <dag_id>``, run for real in a subprocess.

Configuration reaches Airflow only as the README tells an operator: ``AIRFLOW_CONN_*`` and ``AIRFLOW_VAR_*``
environment variables (the ``world`` fixture sets them for the sandbox stores). Nothing of ours wraps the
command: it loads the DAG files itself, with their run deadline, and must exit 0.

The task retries are the operator's default (``ORDERSYNC_TASK_RETRIES`` unset: 2 retries, 1 then 2 minutes
apart), so a configuration error that Airflow retried would not end inside the one-minute guard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

MONTH_AGO = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
GUARD_SECONDS = 60  # a retried task waits 60 s before its first retry: this bound cannot be met by one


def airflow_dags_test(dag_id: str, conf: dict | None = None) -> subprocess.CompletedProcess:
    """``airflow dags test <dag_id> [-c <conf>]`` as an operator types it, with the operator's retry defaults."""
    env = os.environ.copy()
    env.pop("ORDERSYNC_TASK_RETRIES", None)  # the tests' AIRFLOW_HOME sets 0; an operator has the default
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if conf is not None:
        command += ["-c", json.dumps(conf)]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=GUARD_SECONDS)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"`airflow dags test {dag_id}` did not end within {GUARD_SECONDS} s:\n{out[-4000:]}")


def _tail(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-6000:]}"


def test_airflow_dags_test_runs_both_dags_to_success(world):
    old = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], createdAt=MONTH_AGO, updatedAt=MONTH_AGO)
    new = world.order([(ACME, "ACME-HAMMER", 2, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])

    done = airflow_dags_test("order_sync")
    assert done.returncode == 0, _tail(done)
    assert [o["sourceIdentifier"] for o in world.acme_orders()] == [f"ordersync-{new['legacyResourceId']}"]
    assert len(world.bolt_orders()) == 1

    # The operator pushes the old order by name: `-c '{"order_ids": ["#1001"]}'`.
    named = airflow_dags_test("order_sync", {"order_ids": [old["name"]]})
    assert named.returncode == 0, _tail(named)
    assert sorted(o["sourceIdentifier"] for o in world.acme_orders()) == sorted(
        [f"ordersync-{new['legacyResourceId']}", f"ordersync-{old['legacyResourceId']}"]
    )
    assert len(world.bolt_orders()) == 1  # the new order was not pushed a second time

    # Acme ships its share of the new order; tracking_sync writes the shipment back to the merchant order.
    pair = world.ledger().pairs([new["id"]], ACME)[(new["id"], ACME)]
    world.acme.fulfill_order(pair.vendor_order_id, company="UPS", number="1ZCLI001")
    tracked = airflow_dags_test("tracking_sync")
    assert tracked.returncode == 0, _tail(tracked)
    merchant = world.merchant.get_order(new["id"])
    numbers = [t["number"] for f in merchant["fulfillments"] for t in f["trackingInfo"]]
    assert numbers == ["1ZCLI001"]
    assert merchant["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"  # Bolt has not shipped yet

    again = airflow_dags_test("tracking_sync", {"order_ids": [new["name"]]})
    assert again.returncode == 0, _tail(again)
    merchant = world.merchant.get_order(new["id"])
    assert [t["number"] for f in merchant["fulfillments"] for t in f["trackingInfo"]] == ["1ZCLI001"]


def test_unknown_settings_key_fails_the_run_at_once(world):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.settings(push_only_if_pad=True)

    done = airflow_dags_test("order_sync")
    output = done.stdout + done.stderr
    assert done.returncode != 0, _tail(done)
    assert "push_only_if_pad: unknown key" in output, _tail(done)
    assert "configuration problem, nothing was written" in output, _tail(done)
    assert "up_for_retry" not in output.lower(), _tail(done)
    assert world.acme_orders() == [] and world.bolt_orders() == []
    assert world.merchant.requests == []  # stopped before it read a single order
