"""A real distributed run: CeleryExecutor on PostgreSQL and Redis, every Airflow component its own process.

``order_sync`` and ``tracking_sync`` are triggered through Airflow's REST API with a conf, run on the
Celery worker, and the test reads what they did where an operator would: the vendor orders and the
merchant's tracking in the stores, the ledger in its own PostgreSQL database, and the push task's log
through the REST API.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.stack

ACME, BOLT = "Acme Tools", "Bolt Supply"
ORDERS = ["#1001", "#1002"]  # the browser test uses #1005; runs never overlap in what they touch


def _acme_order(stack, merchant_name: str) -> dict:
    tag = "merchant-order-" + merchant_name.lstrip("#")
    found = [o for o in stack.stores["acme"].orders if tag in o.get("tags", [])]
    assert len(found) == 1, f"expected one Acme order tagged {tag}, got {len(found)}"
    return found[0]


def _bolt_order(stack, merchant_name: str) -> dict:
    found = [
        o
        for o in stack.stores["bolt"].orders
        if any(
            m["key"] == "_ordersync_merchant_order" and m["value"] == merchant_name for m in o["meta_data"]
        )
    ]
    assert len(found) == 1, f"expected one Bolt order for {merchant_name}, got {len(found)}"
    return found[0]


def _logs_by_vendor(stack, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """Each mapped instance's log, fetched through the REST API, keyed by its map label (the vendor)."""
    out = {}
    for ti in stack.task_instances(dag_id, run_id):
        if ti["task_id"] == task_id:
            out[ti["rendered_map_index"]] = stack.task_log(
                dag_id, run_id, task_id, ti["try_number"], ti["map_index"]
            )
    return out


def _run(stack, dag_id: str, conf: dict) -> tuple[str, list[dict]]:
    run_id = stack.trigger(dag_id, conf)
    state = stack.wait_for_run(dag_id, run_id, timeout=300)
    tis = stack.task_instances(dag_id, run_id)
    assert state == "success", [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis]
    return run_id, tis


def test_order_sync_then_tracking_sync_on_celery_workers(stack):
    # -- order_sync, triggered through the REST API with a conf, runs every task on the Celery worker
    run_id, tis = _run(stack, "order_sync", {"order_ids": ORDERS, "vendors": [], "dry_run": False})
    queue = stack.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    assert {ti["queue"] for ti in tis} == {queue}
    assert {ti["executor"] or "CeleryExecutor" for ti in tis} == {"CeleryExecutor"}
    assert {ti["task_id"] for ti in tis} == {
        "validate_settings",
        "fetch_orders",
        "decide",
        "push_vendor_orders",
        "summary",
    }

    # the vendor orders are in the vendor stores
    acme_1001, acme_1002 = _acme_order(stack, "#1001"), _acme_order(stack, "#1002")
    assert sorted(li["sku"] for li in acme_1001["lineItems"]) == ["ACME-HAMMER", "ACME-WRENCH-S"]
    assert [li["sku"] for li in acme_1002["lineItems"]] == ["ACME-WRENCH-L"]
    bolt_1001 = _bolt_order(stack, "#1001")
    assert sorted(li["sku"] for li in bolt_1001["line_items"]) == ["BOLT-DRILL-18V", "BOLT-M6-100"]
    assert len(stack.stores["bolt"].orders) == 1  # #1002 has no Bolt lines; #1003-#1005 were not named

    # the ledger is on its own PostgreSQL database
    engine = create_engine(stack.ledger_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("select merchant_order_name, vendor, state from ordersync_vendor_orders order by 1, 2")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("#1001", ACME, "pushed"),
        ("#1001", BOLT, "pushed"),
        ("#1002", ACME, "pushed"),
    ]

    # the push task's log, read through the REST API, holds one decision line per (order, vendor)
    logs = _logs_by_vendor(stack, "order_sync", run_id, "push_vendor_orders")
    assert set(logs) == {ACME, BOLT}
    assert (
        f"order #1001 → vendor '{ACME}': pushed — created vendor order #1001 ({acme_1001['id']})"
        in logs[ACME]
    )
    assert (
        f"order #1002 → vendor '{ACME}': pushed — created vendor order #1002 ({acme_1002['id']})"
        in logs[ACME]
    )
    assert (
        f"order #1001 → vendor '{BOLT}': pushed — created vendor order #{bolt_1001['number']}" in logs[BOLT]
    )
    assert "order #1002" not in logs[BOLT]

    # -- the vendors ship in their own stores; tracking_sync writes it back to the merchant order
    stack.stores["acme"].fulfill_order(acme_1001["id"], company="UPS", number="1ZCELERY001")
    stack.stores["bolt"].add_tracking(bolt_1001["id"], "USPS", "9400CELERY1")
    run_id, tis = _run(stack, "tracking_sync", {"order_ids": ["#1001"]})
    assert {ti["queue"] for ti in tis} == {queue}

    merchant = stack.stores["merchant"].get_order("#1001")
    numbers = sorted(t["number"] for f in merchant["fulfillments"] for t in f["trackingInfo"])
    assert numbers == ["1ZCELERY001", "9400CELERY1"]
    assert merchant["displayFulfillmentStatus"] == "FULFILLED"
    # each vendor task read its own store and staged the shipment; the run's one merchant writer wrote both
    tracking = _logs_by_vendor(stack, "tracking_sync", run_id, "sync_vendor_tracking")
    assert set(tracking) == {ACME, BOLT}
    for vendor in (ACME, BOLT):
        assert (
            f"vendor {vendor!r}: 1 vendor order(s) with shipments for the merchant staged" in tracking[vendor]
        )
    [writer] = [ti for ti in tis if ti["task_id"] == "write_merchant_fulfillments"]
    written = stack.task_log(
        "tracking_sync", run_id, writer["task_id"], writer["try_number"], writer["map_index"]
    )
    for vendor in (ACME, BOLT):
        assert f"tracking order #1001 → vendor {vendor!r} shipment" in written
    assert written.count(": written — created merchant fulfilment") == 2


def test_order_sync_dry_run_for_one_vendor(stack):
    """One mapped instance: Airflow hands summary the bare result, not a list (ordersync.airflow.dagkit.mapped_results)."""
    run_id = stack.trigger("order_sync", {"order_ids": ["#1005"], "dry_run": True})  # Bolt only
    assert stack.wait_for_run("order_sync", run_id, timeout=300) == "success"


def test_tracking_sync_for_one_vendor(stack):
    run_id = stack.trigger("tracking_sync", {"vendors": [ACME], "order_ids": ["#1003"]})
    assert stack.wait_for_run("tracking_sync", run_id, timeout=300) == "success"
