"""Refunds after the push, end to end on both vendor platforms: a merchant refund is recorded on each vendor
order it touches, exactly once, with no money moved at the vendor."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from tests.e2e.conftest import ACME, BOLT, alert_settings

pytestmark = pytest.mark.e2e

HAMMER, BOLTS = "ACME-HAMMER", "BOLT-M6-100"
SKU = {ACME: HAMMER, BOLT: BOLTS}
OTHER = {ACME: BOLT, BOLT: ACME}
PLATFORM_VENDOR = {"shopify": ACME, "woocommerce": BOLT}
SHIPPING = [
    {"title": "Standard", "code": "STD", "source": "shopify", "priceSet": {"shopMoney": {"amount": "10.00"}}}
]


def _pushed(world, hammers: int = 2, bolts: int = 3, **fields):
    order = world.order([(ACME, HAMMER, hammers, "24.00"), (BOLT, BOLTS, bolts, "9.50")], **fields)
    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    for vendor in (ACME, BOLT):
        assert result.outcome(order["name"], vendor) == "pushed"
    return order


def _pair(world, order, vendor):
    return world.ledger().pairs([order["id"]], vendor)[(order["id"], vendor)]


def _bolt_refunds(world, vendor_order_id: str) -> list[dict]:
    """The vendor order's refunds as WooCommerce's REST API lists them."""
    _, value = world.sandbox.connection_env(world.bolt, "ordersync_vendor_bolt")
    conn = json.loads(value)
    answer = requests.get(
        f"{conn['host'].rstrip('/')}/wp-json/wc/v3/orders/{vendor_order_id}/refunds",
        auth=(conn["login"], conn["password"]),
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def _vendor_refunds(world, vendor: str, order) -> list[dict]:
    """``[{"lines": {sku: (quantity, restocked)}, "shipping": Decimal, "money": Decimal, "note": str}]``."""
    pair = _pair(world, order, vendor)
    out = []
    if vendor == ACME:
        acme = world.acme.get_order(pair.vendor_order_id)
        skus = {li["id"]: li.get("sku") for li in acme["lineItems"]}
        for refund in acme.get("refunds") or []:
            lines: dict[str, tuple[int, bool]] = {}
            for item in refund["refundLineItems"]:
                sku = skus[item["lineItem"]["id"]]
                qty, restocked = lines.get(sku, (0, False))
                lines[sku] = (qty + item["quantity"], restocked or item["restockType"] != "NO_RESTOCK")
            shipping = sum(
                (
                    Decimal(s["subtotalAmountSet"]["shopMoney"]["amount"])
                    for s in refund["refundShippingLines"]
                ),
                Decimal(0),
            )
            money = Decimal(refund["totalRefundedSet"]["shopMoney"]["amount"])
            out.append(
                {"lines": lines, "shipping": shipping, "money": money, "note": refund.get("note") or ""}
            )
        return out
    bolt = world.bolt.get_order(pair.vendor_order_id)
    shipping_ids = {s["id"] for s in bolt.get("shipping_lines") or []}
    # WooCommerce answers no api_restock: whether a refund restocked is what its request asked
    sent = {
        str(w["body"].get("reason")): bool(w["body"].get("api_restock", True))
        for w in world.bolt.writes()
        if w["operation"] == "POST /orders/{id}/refunds" and isinstance(w.get("body"), dict)
    }
    for refund in _bolt_refunds(world, pair.vendor_order_id):
        lines = {}
        shipping = Decimal(0)
        for item in refund["line_items"]:
            if item["id"] in shipping_ids or item.get("method_id"):
                shipping += -Decimal(str(item["total"]))
                continue
            lines[item["sku"]] = (-int(item["quantity"]), sent.get(refund.get("reason") or "", False))
        for item in refund.get("shipping_lines") or []:
            shipping += -Decimal(str(item["total"]))
        money = Decimal(0) if not refund.get("refunded_payment") else Decimal(refund["amount"])
        out.append({"lines": lines, "shipping": shipping, "money": money, "note": refund.get("reason") or ""})
    return out


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_partial_refund_of_one_vendors_line_reaches_only_that_vendor(world, platform):
    vendor = PLATFORM_VENDOR[platform]
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={SKU[vendor]: 1}, restock=True)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    assert result.outcome(order["name"], vendor) == "refunded"
    [line] = result.decisions(order["name"], vendor)
    assert f"1 × {SKU[vendor]} (restocked)" in line and "no money moved" in line, line
    assert result.outcome(order["name"], OTHER[vendor]) == "unchanged"  # not a line-item edit either
    [refund] = _vendor_refunds(world, vendor, order)
    assert refund["lines"] == {SKU[vendor]: (1, True)}
    assert refund["money"] == 0  # recorded, nothing paid out by the vendor store
    assert "ordersync-refund-" in refund["note"] and order["name"] in refund["note"]
    assert _vendor_refunds(world, OTHER[vendor], order) == []
    [row] = world.ledger().refunds.for_share(order["id"], vendor)
    assert row.state == "recorded" and row.vendor_refund_id and row.attempts == 1

    writes = len(world.vendor_writes())
    again = world.run(order_ids=[order["name"]])  # a rerun naming the order writes nothing
    assert again.outcome(order["name"], vendor) == "unchanged", "\n".join(again.lines)
    assert len(world.vendor_writes()) == writes
    assert len(_vendor_refunds(world, vendor, order)) == 1


def test_a_refund_spanning_two_vendors_reaches_both_and_a_refund_not_restocked_is_not_restocked(world):
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={HAMMER: 1, BOLTS: 2}, restock=False)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    assert result.outcome(order["name"], ACME) == result.outcome(order["name"], BOLT) == "refunded"
    assert [r["lines"] for r in _vendor_refunds(world, ACME, order)] == [{HAMMER: (1, False)}]
    assert [r["lines"] for r in _vendor_refunds(world, BOLT, order)] == [{BOLTS: (2, False)}]
    # the vendor orders stay open: part of each share is still to ship
    assert not world.acme.get_order(_pair(world, order, ACME).vendor_order_id)["cancelledAt"]
    assert world.bolt.get_order(_pair(world, order, BOLT).vendor_order_id)["status"] != "cancelled"


def test_a_shipping_refund_is_split_as_the_shipping_was(world):
    order = _pushed(world, shippingLines=SHIPPING)  # goods 48.00 (Acme) and 28.50 (Bolt): 6.27 + 3.73
    world.merchant.refund_order(order["id"], shipping=True)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    acme = _vendor_refunds(world, ACME, order)
    bolt = _vendor_refunds(world, BOLT, order)
    assert [r["shipping"] for r in acme] == [Decimal("6.27")]
    assert [r["shipping"] for r in bolt] == [Decimal("3.73")]
    assert acme[0]["lines"] == bolt[0]["lines"] == {}
    assert "shipping 6.27" in result.decisions(order["name"], ACME)[0]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_full_refund_before_shipping_records_the_refund_and_cancels_the_vendor_order(world, platform):
    vendor = PLATFORM_VENDOR[platform]
    order = _pushed(world)
    world.merchant.refund_order(
        order["id"], quantities={SKU[vendor]: 2 if vendor == ACME else 3}, restock=True
    )

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    lines = result.decisions(order["name"], vendor)
    assert [line.split(": ", 1)[1].split(" — ")[0] for line in lines] == ["refunded", "cancelled"], lines
    assert "refunded whole at the marketplace" in lines[1]
    assert len(_vendor_refunds(world, vendor, order)) == 1
    pair = _pair(world, order, vendor)
    assert pair.cancel_state == "cancelled"
    if vendor == ACME:
        assert world.acme.get_order(pair.vendor_order_id)["cancelledAt"]
    else:
        assert world.bolt.get_order(pair.vendor_order_id)["status"] == "cancelled"
    assert result.outcome(order["name"], OTHER[vendor]) == "unchanged"

    writes = len(world.vendor_writes())
    assert world.run(order_ids=[order["name"]]).state == "success"
    assert len(world.vendor_writes()) == writes


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_connection_dropped_after_the_vendor_recorded_the_refund_leaves_one_refund(
    world, receiver, platform
):
    world.settings(**alert_settings())
    vendor = PLATFORM_VENDOR[platform]
    store, operation = (
        (world.acme, "refundCreate") if platform == "shopify" else (world.bolt, "POST /orders/{id}/refunds")
    )
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={SKU[vendor]: 1}, restock=True)
    store.add_fault(operation, times=1, kind="drop_after")

    faulty = world.run()
    assert [e for e in store.log() if e["fault"] == "drop_after"], "the fault never fired"
    assert faulty.outcome(order["name"], vendor) == "failed", "\n".join(faulty.lines)
    assert len(_vendor_refunds(world, vendor, order)) == 1  # the vendor had recorded it
    [row] = world.ledger().refunds.for_share(order["id"], vendor)
    assert row.state == "in_flight" and row.last_error

    healthy = world.run()  # the order did not change: the open refund row brings it back
    assert healthy.state == "success", "\n".join(healthy.lines)
    [line] = healthy.decisions(order["name"], vendor)
    assert "refunded" in line and "found" in line, line
    assert len(_vendor_refunds(world, vendor, order)) == 1
    [row] = world.ledger().refunds.for_share(order["id"], vendor)
    assert row.state == "recorded" and row.attempts == 2


def test_sync_refunds_off_for_one_vendor_leaves_its_order_alone_and_says_so_once(world):
    vendors = [dict(v) for v in world.vendors]
    vendors[1]["settings"] = {"sync_refunds": False}  # Bolt Supply
    world.set_vendors(vendors)
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={HAMMER: 1, BOLTS: 1}, restock=True)

    result = world.run()
    assert result.outcome(order["name"], ACME) == "refunded"
    assert result.outcome(order["name"], BOLT) == "skipped"
    assert "sync_refunds=false, vendor Bolt Supply" in result.decisions(order["name"], BOLT)[0]
    assert _vendor_refunds(world, BOLT, order) == []
    again = world.run(order_ids=[order["name"]])
    assert again.outcome(order["name"], BOLT) == "unchanged"  # said once
    assert _vendor_refunds(world, BOLT, order) == []


def test_a_platform_that_takes_no_refunds_gets_a_manual_line_and_one_alert(world, receiver, monkeypatch):
    """A platform whose capabilities declare no refunds (here WooCommerce made so for the test)."""
    from ordersync.orders import push

    real = push.capabilities
    monkeypatch.setattr(
        push,
        "capabilities",
        lambda name: (
            {k: v for k, v in real(name).items() if k != "refunds"} if name == "woocommerce" else real(name)
        ),
    )
    world.settings(**alert_settings())
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={BOLTS: 1}, restock=True)
    posts = len(receiver.received)

    result = world.run()
    assert result.outcome(order["name"], BOLT) == "manual"
    line = result.decisions(order["name"], BOLT)[0]
    assert "takes no refunds" in line and "1 × BOLT-M6-100 (restocked)" in line, line
    assert _vendor_refunds(world, BOLT, order) == []
    [alert] = [a for a in receiver.received[-1]["body"]["alerts"] if a["order"] == order["name"]]
    assert (alert["kind"], alert["vendor"], alert["operation"]) == ("manual", BOLT, "refund")
    assert len(receiver.received) == posts + 1
    again = world.run(order_ids=[order["name"]])  # reported once
    assert again.outcome(order["name"], BOLT) == "unchanged"
    assert len(receiver.received) == posts + 1


def test_refunds_are_read_when_the_backlog_goes_through_a_bulk_operation(world, monkeypatch):
    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={HAMMER: 1}, restock=True)
    monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "0")  # the changed orders are read with a bulk operation

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    assert any("bulk operation" in line for line in result.lines), "\n".join(result.lines)
    assert result.outcome(order["name"], ACME) == "refunded"
    assert [r["lines"] for r in _vendor_refunds(world, ACME, order)] == [{HAMMER: (1, True)}]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_refund_of_units_the_vendor_already_shipped_is_recorded_and_reported(world, receiver, platform):
    world.settings(**alert_settings())
    vendor = PLATFORM_VENDOR[platform]
    order = _pushed(world)
    pair = _pair(world, order, vendor)
    if platform == "shopify":
        world.acme.fulfill_order(pair.vendor_order_id, company="UPS", number="1ZSHIPPED")
    else:
        world.bolt.set_status(pair.vendor_order_id, "completed")
    world.merchant.refund_order(order["id"], quantities={SKU[vendor]: 1}, restock=True)
    posts = len(receiver.received)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    [line] = result.decisions(order["name"], vendor)
    assert "refunded" in line and "already shipped 1 of the refunded unit(s)" in line, line
    [refund] = _vendor_refunds(world, vendor, order)
    assert refund["lines"] == {SKU[vendor]: (1, True)}
    if platform == "shopify":  # a shipped unit goes back to stock as a return, not a cancellation
        acme = world.acme.get_order(pair.vendor_order_id)
        assert [i["restockType"] for i in acme["refunds"][0]["refundLineItems"]] == ["RETURN"]
    assert len(receiver.received) == posts + 1
    [alert] = [a for a in receiver.received[-1]["body"]["alerts"] if a["order"] == order["name"]]
    assert (alert["kind"], alert["operation"]) == ("manual", "refund") and "already shipped" in alert[
        "message"
    ]


def test_a_refunds_create_webhook_event_run_mirrors_the_refund(world, monkeypatch):
    """The event run a merchant ``refunds/create`` delivery starts (made one here as tests/e2e/test_event_runs.py
    does; the real deliveries are tests/stack/test_event_driven.py) takes that order and mirrors its refund."""
    from ordersync.airflow import dagkit

    order = _pushed(world)
    world.merchant.refund_order(order["id"], quantities={BOLTS: 1}, restock=False)
    assert world.ledger().inbox.record(
        "ordersync_merchant", "test:refund:1", "order_sync", "refunds/create", order["id"]
    )
    monkeypatch.setattr(dagkit, "is_event_run", lambda context: True)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    assert result.outcome(order["name"], BOLT) == "refunded"
    assert [r["lines"] for r in _vendor_refunds(world, BOLT, order)] == [{BOLTS: (1, False)}]
    assert [r["outcome"] for r in world.ledger().inbox.rows()] == ["handled"]


def test_a_merchant_cancellation_of_an_order_the_vendor_shipped_still_records_its_refund_there(world):
    order = _pushed(world)
    pair = _pair(world, order, ACME)
    world.acme.fulfill_order(pair.vendor_order_id, company="UPS", number="1ZSHIPPED2")
    world.merchant.refund_order(order["id"], quantities={HAMMER: 2, BOLTS: 3}, restock=True)
    world.merchant.cancel_order(order["id"], reason="CUSTOMER")

    result = world.run()
    lines = result.decisions(order["name"], ACME)
    assert [line.split(": ", 1)[1].split(" — ")[0] for line in lines] == ["manual", "refunded"], lines
    assert "cannot cancel" in lines[0] and "already shipped 2" in lines[1]
    assert [r["lines"] for r in _vendor_refunds(world, ACME, order)] == [{HAMMER: (2, True)}]
    assert result.outcome(order["name"], BOLT) == "cancelled"  # the other vendor's order is simply cancelled
    assert _vendor_refunds(world, BOLT, order) == []
    again = world.run(order_ids=[order["name"]])
    assert again.outcome(order["name"], ACME) == "unchanged"
    assert len(_vendor_refunds(world, ACME, order)) == 1


def test_an_order_whose_refunds_do_not_fit_one_read_is_still_synced_and_its_refunds_go_to_a_human(
    world, receiver
):
    from ordersync.platforms.shopify.documents import REFUNDS_PAGE_SIZE

    world.settings(**alert_settings())
    order = _pushed(world, hammers=REFUNDS_PAGE_SIZE + 1)
    for _ in range(REFUNDS_PAGE_SIZE):
        world.merchant.refund_order(order["id"], quantities={HAMMER: 1})
    world.merchant.update_order(order["id"], note="call before delivery")  # an edit in the same read
    posts = len(receiver.received)

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    acme = result.decisions(order["name"], ACME)
    assert any("refunds could not be read" in line and "by hand" in line for line in acme), acme
    assert any(": updated — " in line for line in acme), acme  # the order itself still synced
    assert _vendor_refunds(world, ACME, order) == []
    [alert] = [a for a in receiver.received[-1]["body"]["alerts"] if a["vendor"] == ACME]
    assert (alert["kind"], alert["operation"]) == ("manual", "refund")
    assert len(receiver.received) == posts + 1
    again = world.run(order_ids=[order["name"]])  # said and alerted once
    assert not any("could not be read" in line for line in again.decisions(order["name"], ACME))
    assert len(receiver.received) == posts + 1


def test_after_the_upgrade_older_refunds_on_orders_pushed_before_it_are_not_sent(world):
    """A ledger that pushed orders before refund sync (migration 0008's refunds_synced_since is later than the
    push): a refund made before the push is settled before_push, one made after it but before the upgrade is
    said manual once (the version before flagged it for a human); neither reaches the vendor."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from ordersync.ledger import meta_table, vendor_orders

    early = _pushed(world)
    late = _pushed(world)
    world.merchant.refund_order(early["id"], quantities={HAMMER: 1}, restock=True)
    world.merchant.refund_order(late["id"], quantities={HAMMER: 1}, restock=True)
    later = datetime.now(UTC) + timedelta(minutes=10)
    with world.ledger().engine.begin() as conn:
        conn.execute(
            update(meta_table)
            .where(meta_table.c.key == "refunds_synced_since")
            .values(value=(later + timedelta(hours=1)).isoformat())
        )
        # the early order's vendor order was made after its refund (as if pushed later), the late one's well
        # before its refund (timestamps are whole seconds: a push and a refund in one second cannot be ordered)
        for order, pushed in ((early, later), (late, datetime.now(UTC) - timedelta(minutes=10))):
            conn.execute(
                update(vendor_orders)
                .where(vendor_orders.c.merchant_order_id == order["id"])
                .values(first_attempt_at=pushed)
            )

    result = world.run()
    assert result.state == "success", "\n".join(result.lines)
    assert result.outcome(early["name"], ACME) == "unchanged"
    [line] = result.decisions(late["name"], ACME)
    assert ": manual — " in line and "before refunds were mirrored" in line, line
    assert _vendor_refunds(world, ACME, early) == [] and _vendor_refunds(world, ACME, late) == []
    states = {
        o["name"]: [r.state for r in world.ledger().refunds.for_share(o["id"], ACME)] for o in (early, late)
    }
    assert states == {early["name"]: ["before_push"], late["name"]: ["manual"]}
    again = world.run(order_ids=[early["name"], late["name"]])
    assert again.outcome(late["name"], ACME) == "unchanged"
