"""The ledger on SQLite and PostgreSQL: schema, pairs, exactly-once bookkeeping, scratch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from ordersync.ledger import Ledger
from ordersync.models import Mapping, MerchantOrder


@pytest.fixture
def ledger(ledger_url):
    led = Ledger(ledger_url)
    led.migrate()
    return led


def _order(n: int) -> MerchantOrder:
    t = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n)
    return MerchantOrder(
        id=f"gid://shopify/Order/{n}",
        legacy_id=str(n),
        name=f"#{1000 + n}",
        created_at=t,
        updated_at=t,
        currency="USD",
    )


def test_watermark_round_trip(ledger):
    assert ledger.watermark("merchant_orders") is None
    moment = datetime(2026, 11, 27, 3, 4, 5, tzinfo=UTC)
    ledger.set_watermark("merchant_orders", moment)
    ledger.set_watermark("merchant_orders", moment + timedelta(seconds=1))
    assert ledger.watermark("merchant_orders") == moment + timedelta(seconds=1)


def test_sku_cache(ledger):
    ledger.store_mappings(
        "Acme", [Mapping(sku="A", product_id="p", variant_id="v"), Mapping(sku="B", product_id="q")]
    )
    ledger.store_mappings("Acme", [Mapping(sku="A", product_id="p2", variant_id="v2")])
    found = ledger.cached_mappings("Acme", ["A", "B", "C"])
    assert found["A"].variant_id == "v2" and found["B"].variant_id is None and "C" not in found
    assert ledger.cached_mappings("Other", ["A"]) == {}


def test_exactly_once_states(ledger):
    o = _order(1)
    pair = ledger.begin_attempt(o.id, "Acme", o.name, "ordersync-1", "run1")
    assert pair.state == "in_flight" and pair.attempts == 1 and pair.first_attempt_at is not None
    assert ledger.open_order_ids() == [o.id]
    ledger.mark_failed(o.id, "Acme", o.name, "timeout", maybe_committed=True)
    assert ledger.pairs([o.id])[(o.id, "Acme")].state == "unknown"
    again = ledger.begin_attempt(o.id, "Acme", o.name, "ordersync-1", "run2")
    assert again.attempts == 2 and again.first_attempt_at == pair.first_attempt_at
    ledger.mark_pushed(o.id, "Acme", o.name, "gid://shopify/Order/9", "#9", "created")
    done = ledger.pairs([o.id])[(o.id, "Acme")]
    assert done.state == "pushed" and done.vendor_order_id == "gid://shopify/Order/9"
    # Nothing downgrades a pushed pair, and it cannot be attempted again.
    ledger.mark_not_pushed(o.id, "Acme", o.name, "held", "late", "unpaid")
    ledger.mark_failed(o.id, "Acme", o.name, "x", maybe_committed=False)
    assert ledger.pairs([o.id])[(o.id, "Acme")].state == "pushed"
    with pytest.raises(RuntimeError, match="already pushed"):
        ledger.begin_attempt(o.id, "Acme", o.name, "ordersync-1", "run3")
    assert ledger.open_order_ids() == []


def test_open_orders_include_unmapped_holds_but_not_unpaid(ledger):
    a, b, c = _order(1), _order(2), _order(3)
    ledger.mark_not_pushed(a.id, "Acme", a.name, "held", "no mapping", "unmapped")
    ledger.mark_not_pushed(b.id, "Acme", b.name, "held", "pending", "unpaid")
    ledger.mark_not_pushed(c.id, "Bolt", c.name, "queued", "queued")
    assert sorted(ledger.open_order_ids()) == sorted([a.id, c.id])
    assert ledger.open_order_ids(["Bolt"]) == [c.id]


def test_run_scratch(ledger):
    orders = [_order(n) for n in range(3)]
    assert ledger.stage_orders("r1", orders) == 3
    ledger.stage_orders("r1", orders[:1])  # re-staging replaces, never duplicates
    assert [o.name for o in ledger.staged_orders("r1")] == ["#1000", "#1001", "#1002"]
    assert [o.id for o in ledger.staged_orders("r1", [orders[2].id])] == [orders[2].id]
    assert ledger.staged_orders("r2") == []
    ledger.clear_run("r1")
    assert ledger.staged_orders("r1") == []


def test_decisions(ledger):
    ledger.record_decisions(
        "r1",
        [
            {
                "merchant_order_id": "1",
                "merchant_order_name": "#1",
                "vendor": "Acme",
                "outcome": "pushed",
                "reason": "created",
            }
        ],
    )
    [row] = ledger.decisions_for_run("r1")
    assert row["outcome"] == "pushed" and row["reason"] == "created"
    assert ledger.decisions_for_run("r2") == []


def test_shipment_rows_bracket_the_merchant_write(ledger):
    ledger.begin_shipment(
        "Acme",
        "gid://shopify/Order/9",
        "gid://shopify/Fulfillment/1",
        "gid://shopify/Order/1",
        "#1001",
        "run1",
    )
    [row] = ledger.shipments("Acme", "gid://shopify/Order/9").values()
    assert row["state"] == "in_flight" and row["attempts"] == 1 and row["first_attempt_at"] is not None
    ledger.shipment_failed("Acme", "gid://shopify/Order/9", "gid://shopify/Fulfillment/1", "dropped", True)
    assert (
        ledger.shipments("Acme", "gid://shopify/Order/9")["gid://shopify/Fulfillment/1"]["state"]
        == "in_flight"
    )
    ledger.shipment_written(
        "Acme",
        "gid://shopify/Order/9",
        "gid://shopify/Fulfillment/1",
        "gid://shopify/Order/1",
        "#1001",
        "gid://shopify/Fulfillment/77",
        "fp",
        "{}",
    )
    row = ledger.shipments("Acme", "gid://shopify/Order/9")["gid://shopify/Fulfillment/1"]
    assert row["state"] == "written" and row["merchant_fulfillment_id"] == "gid://shopify/Fulfillment/77"
    assert ledger.merchant_fulfillments_recorded("gid://shopify/Order/1") == {"gid://shopify/Fulfillment/77"}
    ledger.shipment_failed(
        "Acme", "gid://shopify/Order/9", "gid://shopify/Fulfillment/1", "update refused", False
    )
    assert (
        ledger.shipments("Acme", "gid://shopify/Order/9")["gid://shopify/Fulfillment/1"]["state"] == "written"
    )


def test_alert_deliveries_are_recorded_once_per_channel(ledger):
    ledger.queue_alerts(
        "r1",
        [
            {
                "kind": "manual",
                "merchant_order_name": "#1",
                "vendor": "Acme",
                "operation": "line_items",
                "message": "qty changed",
                "suggestion": "by hand",
            }
        ],
    )
    assert [a["kind"] for a in ledger.queued_alerts("r1")] == ["manual"] and ledger.queued_alerts("r2") == []
    assert ledger.alert_delivered("r1") == set()
    ledger.mark_alert_delivered("r1", "email", 1)
    assert ledger.alert_delivered("r1") == {"email"}
    with pytest.raises(IntegrityError):  # a second record for the same run and channel is refused
        ledger.mark_alert_delivered("r1", "email", 1)
    assert ledger.alert_delivered("r1") == {"email"}
