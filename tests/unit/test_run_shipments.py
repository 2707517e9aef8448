"""tracking_sync's run scratch between the vendor tasks and the one merchant writer (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ordersync.ledger import Ledger
from ordersync.ledger.run_shipments import StagedShipments
from ordersync.tracking.model import Shipment, ShippedOrder, Tracking, from_json, to_json

RUN, OTHER = "tracking_sync/manual__1", "tracking_sync/manual__2"


def _order(vid: str, number: str = "1Z1", **kw) -> ShippedOrder:
    return ShippedOrder(
        id=vid,
        name=f"#{vid}",
        updated_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        status="FULFILLED",
        shipments=(
            Shipment(
                key=f"ship-{vid}",
                tracking=Tracking("UPS", (number,), ("https://ups.example/" + number,)),
                lines=(("ACME-HAMMER", 2),),
                created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            ),
        ),
        **kw,
    )


def test_a_shipped_order_survives_the_scratch_unchanged():
    lines = _order("v1")
    whole = ShippedOrder(
        id="77",
        name="#77",
        updated_at=None,
        status="completed",
        shipments=(Shipment(key="t1", tracking=Tracking(None, ("9400",)), lines=None),),
        lines=(("BOLT-M6", 1), ("BOLT-M8", 3)),
        whole_order_tracking=True,
    )
    assert from_json(to_json(lines)) == lines
    assert from_json(to_json(whole)) == whole
    assert from_json(to_json(whole)).shipments[0].lines is None  # "the order's unshipped lines", not "none"


def test_stage_restage_finish_fail_and_clear(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    scratch = ledger.run_shipments
    item = lambda vendor, vid, number="1Z1": StagedShipments(  # noqa: E731
        vendor, vid, f"gid://shopify/Order/{vid}", to_json(_order(vid, number))
    )
    assert scratch.stage(RUN, [item("Acme", "2"), item("Acme", "1"), item("Bolt", "3")]) == 3
    scratch.stage(RUN, [item("Acme", "1", "1Z-NEWER")])  # read again: the newest read wins, no second row
    scratch.stage(OTHER, [item("Acme", "1")])
    staged = scratch.staged(RUN)
    assert [(s.vendor, s.vendor_order_id) for s in staged] == [("Acme", "1"), ("Acme", "2"), ("Bolt", "3")]
    assert from_json(staged[0].payload).shipments[0].tracking.numbers == ("1Z-NEWER",)

    scratch.finished(RUN, "Acme", "1")
    scratch.failed(RUN, "Bolt", "3", "no open line")
    assert scratch.left(RUN) == {"Acme": 1, "Bolt": 1}
    assert scratch.left(OTHER) == {"Acme": 1}  # another run's rows are its own
    scratch.clear(RUN)
    assert scratch.left(RUN) == {} and scratch.left(OTHER) == {"Acme": 1}
    assert ledger.dump()["ordersync_shipments"] == []  # dump leaves the scratch out unless asked
    assert "ordersync_run_shipments" not in ledger.dump()
    assert len(ledger.dump(include_scratch=True)["ordersync_run_shipments"]) == 1


def test_a_dead_runs_rows_are_purged(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    ledger.run_shipments.stage(
        RUN, [StagedShipments("Acme", "1", "gid://shopify/Order/1", to_json(_order("1")))]
    )
    assert ledger.run_shipments.purge(older_than=timedelta(days=2)) == 0
    assert ledger.run_shipments.purge(older_than=timedelta(seconds=-1)) == 1
    assert ledger.run_shipments.left(RUN) == {}
