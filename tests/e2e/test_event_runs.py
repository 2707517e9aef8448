"""Event runs (started by a webhook's asset event) in process: what they take, what they honour, what they leave.

Airflow runs the DAGs with ``dag.test`` against the sandbox stores over real HTTP and a real ledger; the run is
made an event run by answering ``dagkit.is_event_run`` with True (``dag.test`` can only make manual runs). The
real asset-triggered runs, started by real deliveries, are tests/stack/test_event_driven.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordersync.airflow import dagkit
from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

MONTH_AGO = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def events(world, monkeypatch):
    """Record inbox events as the receiver would, and make the next runs event runs."""
    ledger = world.ledger()
    ledger.migrate()
    monkeypatch.setattr(dagkit, "is_event_run", lambda context: True)
    counter = iter(range(1, 10_000))

    def record(order_id: str, conn_id: str = "ordersync_merchant", dag_id: str = "order_sync") -> None:
        assert ledger.inbox.record(conn_id, f"test:{next(counter)}", dag_id, "orders/paid", order_id)

    record.inbox = ledger.inbox
    return record


def test_an_event_run_takes_exactly_the_inbox_orders_and_moves_no_watermark(world, events, monkeypatch):
    with monkeypatch.context() as scheduled:  # a scheduled-like run first: the horizon and the watermark
        scheduled.setattr(dagkit, "is_event_run", lambda context: False)
        assert world.run().state == "success"
    watermark = world.ledger().watermark("merchant_orders")
    named = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    other = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00")])
    events(named["id"])
    events(named["id"])  # orders/create and orders/paid of one order: one fetch

    run = world.run()
    assert run.state == "success", run.lines
    assert run.outcome(named["name"], ACME) == "pushed" and run.outcome(named["name"], BOLT) == "pushed"
    assert run.decisions(other["name"]) == []  # not in the inbox: left to the scheduled run
    assert any("event run: 2 webhook event(s) waiting name 1 order(s)" in line for line in run.lines)
    assert world.ledger().watermark("merchant_orders") == watermark
    rows = events.inbox.rows()
    assert [r["outcome"] for r in rows] == ["handled", "handled"]

    again = world.run()  # the inbox is empty: nothing fetched, nothing written
    assert again.state == "success"
    assert any("nothing to fetch" in line for line in again.lines), again.lines
    assert len(world.acme_orders()) == 1 and len(world.bolt_orders()) == 1


def test_an_event_run_honours_the_settings_and_the_sync_horizon(world, events, monkeypatch):
    with monkeypatch.context() as scheduled:
        scheduled.setattr(dagkit, "is_event_run", lambda context: False)
        assert world.run().state == "success"  # records the sync horizon
    old = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], createdAt=MONTH_AGO, updatedAt=MONTH_AGO)
    unpaid = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], status="PENDING")
    events(old["id"])
    events(unpaid["id"])
    run = world.run()
    assert run.state == "success", run.lines
    assert run.outcome(old["name"], ACME) == "skipped"
    assert "before the sync horizon" in run.decisions(old["name"], ACME)[0]
    assert run.outcome(unpaid["name"], ACME) == "held"
    assert world.acme_orders() == []

    world.settings(order_sync_enabled=False)
    paid = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    events(paid["id"])
    off = world.run()
    assert off.state == "success", off.lines
    assert off.outcome(paid["name"], ACME) == "skipped"
    assert world.acme_orders() == []


def test_a_failed_event_run_gives_its_events_back(world, events):
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    events(order["id"])
    world.merchant.add_fault("*", "http_error", times=-1, status=500)
    try:
        failed = world.run()
    finally:
        world.merchant.faults.clear()
    assert failed.state == "failed"
    (row,) = events.inbox.rows()
    assert row["claimed_by"] is None and row["done_at"] is None  # back in the inbox for the next run
    retried = world.run()
    assert retried.state == "success", retried.lines
    assert retried.outcome(order["name"], ACME) == "pushed"
    assert [r["outcome"] for r in events.inbox.rows()] == ["handled"]


def test_a_tracking_event_run_reads_only_the_vendors_whose_events_name_a_pushed_order(
    tracking_world, monkeypatch
):
    world = tracking_world
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    assert world.run().state == "success"
    acme_id = world.ledger().pairs([order["id"]], ACME)[(order["id"], ACME)].vendor_order_id
    world.acme.fulfill_order(acme_id, company="UPS", number="1ZEVENT1")
    bolt_id = world.ledger().pairs([order["id"]], BOLT)[(order["id"], BOLT)].vendor_order_id
    world.bolt.add_tracking(bolt_id, "USPS", "9400EVENT1")  # shipped, but no event names it

    ledger = world.ledger()
    ledger.inbox.record("ordersync_vendor_acme", "e1", "tracking_sync", "fulfillments/create", acme_id)
    ledger.inbox.record(
        "ordersync_vendor_acme", "e2", "tracking_sync", "orders/updated", "gid://shopify/Order/1"
    )
    monkeypatch.setattr(dagkit, "is_event_run", lambda context: True)
    run = world.run_tracking()
    assert run.state == "success", run.lines
    assert run.task_states["sync_vendor_tracking"] == ["success"]  # one mapped instance: Acme only
    assert run.outcomes(order["name"], ACME) == ["written"]
    assert run.tracking(order["name"], BOLT) == []
    numbers = [
        t["number"] for f in world.merchant.get_order(order["id"])["fulfillments"] for t in f["trackingInfo"]
    ]
    assert numbers == ["1ZEVENT1"]
    assert {r["dedup_key"]: r["outcome"] for r in ledger.inbox.rows()} == {"e1": "handled", "e2": "handled"}
    assert ledger.watermark(f"tracking:{ACME}") is None  # event runs move no watermark

    monkeypatch.setattr(dagkit, "is_event_run", lambda context: False)
    scheduled = world.run_tracking()  # the scheduled run reconciles: Bolt's shipment comes back too
    assert scheduled.outcomes(order["name"], BOLT) == ["written"]
