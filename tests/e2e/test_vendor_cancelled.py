"""A vendor order cancelled at the vendor, not by ordersync, end to end on both platforms (operator contract,
"Changes after the push"): the next tracking_sync reports it once (a ``vendor_cancelled`` alert naming the
order, the vendor and the vendor's reason), tags the merchant order ``ordersync-vendor-cancelled``, records the
share as cancelled by the vendor, and never writes tracking back from that vendor order. The merchant order is
not cancelled. A vendor order ordersync cancelled itself is not reported. The vendor's word on it is quoted: a
Shopify cancellation's staff note, the latest note a person left on a WooCommerce order (its order notes, not
the store's own "Order status changed" ones). Airflow runs the DAGs; the stores are real HTTP servers on
loopback."""

from __future__ import annotations

import pytest

from ordersync.airflow import dagkit
from ordersync.tracking.writeback import TAG_PENDING, TAGGED
from tests.e2e.conftest import ACME, BOLT, alert_settings

pytestmark = pytest.mark.e2e

TAG = "ordersync-vendor-cancelled"


def _vendor_order(world, order, vendor) -> str:
    return world.ledger().pairs([order["id"]], vendor)[(order["id"], vendor)].vendor_order_id


def _share(world, order, vendor) -> dict:
    [row] = [
        r
        for r in world.ledger().dump()["ordersync_vendor_orders"]
        if r["merchant_order_id"] == order["id"] and r["vendor"] == vendor
    ]
    return row


def _kinds(receiver, kind="vendor_cancelled") -> list[dict]:
    return [a for a in receiver.alerts() if a["kind"] == kind]


def _tags(world, order) -> list[str]:
    return list(world.merchant.get_order(order["id"])["tags"])


def _merchant_ops(world) -> list[str]:
    return sorted(e["operation"] for e in world.merchant.writes())


def test_a_vendor_cancellation_is_reported_once_tagged_recorded_and_never_written_back(
    tracking_world, receiver
):
    world = tracking_world
    world.settings(**alert_settings())
    cut = world.order([(ACME, "ACME-HAMMER", 2, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")])
    ours = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    unrecorded = world.order([(ACME, "ACME-WRENCH-L", 1, "19.00")])
    assert world.run().state == "success"
    acme_cut, bolt_cut = _vendor_order(world, cut, ACME), _vendor_order(world, cut, BOLT)
    # ordersync's own orderCancel whose ledger record was lost (the push task died right after it): known by
    # its staff note, not reported
    world.acme.cancel_order(
        _vendor_order(world, unrecorded, ACME),
        reason="CUSTOMER",
        staff_note=f"Cancelled at the marketplace: {unrecorded['name']}",
    )

    # Acme ships one hammer, then cancels the rest in its own store; Bolt cancels its share.
    world.acme.fulfill_order(acme_cut, {"ACME-HAMMER": 1}, company="UPS", number="1Z-CUT")
    world.acme.cancel_order(acme_cut, reason="INVENTORY", staff_note="hammers out of stock")
    # Bolt's shop manager writes to the customer, then cancels: the status change is the store's own, newer note
    world.bolt.add_note(bolt_cut, "Out of stock, sorry", customer_note=True, author="Dana Cole")
    world.bolt.set_status(bolt_cut, "cancelled")
    assert [n["author"] for n in world.bolt.notes(bolt_cut)][:2] == ["WooCommerce", "Dana Cole"]
    # The merchant cancels the other order: ordersync cancels both vendor orders itself.
    world.merchant.cancel_order(ours["id"], reason="CUSTOMER")
    cancelling = world.run()
    assert cancelling.outcome(ours["name"], ACME) == "cancelled"
    assert cancelling.outcome(ours["name"], BOLT) == "cancelled"
    world.merchant.clear_log()
    received = len(receiver.received)

    # A dry run says what it would do and does none of it.
    dry = world.run_tracking(dry_run=True)
    assert dry.state == "success", "\n".join(dry.lines)
    assert dry.outcomes(cut["name"], ACME) == ["cancelled"] and dry.outcomes(cut["name"], BOLT) == [
        "cancelled"
    ]
    assert all(
        "would report" in line for line in dry.tracking(cut["name"], ACME) + dry.tracking(cut["name"], BOLT)
    )
    assert 'status cancelled, note "Out of stock, sorry"' in dry.tracking(cut["name"], BOLT)[0]
    assert world.merchant.writes() == [] and len(receiver.received) == received
    assert _share(world, cut, ACME)["cancel_state"] is None

    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    # one decision line each, saying what happened and the vendor's reason
    [acme_line] = result.tracking(cut["name"], ACME)
    [bolt_line] = result.tracking(cut["name"], BOLT)
    assert result.outcomes(cut["name"], ACME) == ["cancelled"] == result.outcomes(cut["name"], BOLT)
    assert "cancelled at the vendor" in acme_line and "not by ordersync" in acme_line
    assert "cancelReason INVENTORY" in acme_line and "hammers out of stock" in acme_line
    assert "reported (alert vendor_cancelled)" in acme_line and f"merchant order tagged {TAG}" in acme_line
    assert "not written back: 1 shipment(s), UPS 1Z-CUT" in acme_line  # shipped before it was cancelled
    assert "status cancelled" in bolt_line and f"merchant order tagged {TAG}" in bolt_line
    assert 'not by ordersync (status cancelled, note "Out of stock, sorry")' in bolt_line
    assert "Order status changed" not in bolt_line  # WooCommerce's own note is not the vendor's word
    # ordersync's own cancellations are not reported
    assert result.outcomes(ours["name"], ACME) == ["unchanged"] and result.outcomes(ours["name"], BOLT) == [
        "unchanged"
    ]
    assert not any(
        "vendor_cancelled" in line for v in (ACME, BOLT) for line in result.tracking(ours["name"], v)
    )

    # one alert per vendor order, naming the merchant order, the vendor and the vendor's reason
    alerts = _kinds(receiver)
    assert sorted((a["order"], a["vendor"]) for a in alerts) == [(cut["name"], ACME), (cut["name"], BOLT)]
    by_vendor = {a["vendor"]: a for a in alerts}
    assert "cancelReason INVENTORY" in by_vendor[ACME]["message"]
    assert "hammers out of stock" in by_vendor[ACME]["message"]
    assert 'status cancelled, note "Out of stock, sorry"' in by_vendor[BOLT]["message"]
    assert all(a["suggestion"] for a in alerts)
    assert all(a["order"] not in (ours["name"], unrecorded["name"]) for a in receiver.alerts())
    assert result.outcomes(unrecorded["name"], ACME) == ["unchanged"]
    assert _share(world, unrecorded, ACME)["cancel_state"] is None  # left to order_sync

    # the merchant order is tagged, not cancelled, and nothing was fulfilled from the cancelled vendor order
    merchant_cut = world.merchant.get_order(cut["id"])
    assert TAG in merchant_cut["tags"] and "vip" in merchant_cut["tags"]
    assert merchant_cut["cancelledAt"] is None and merchant_cut["fulfillments"] == []
    assert TAG not in _tags(world, ours) and TAG not in _tags(world, unrecorded)
    assert _merchant_ops(world) == ["tagsAdd", "tagsAdd"]

    # the share is recorded as cancelled by the vendor; ordersync's own stay "cancelled"
    for vendor in (ACME, BOLT):
        share = _share(world, cut, vendor)
        assert share["cancel_state"] == "vendor_cancelled" and share["cancelled_at"] is not None
        assert share["state"] == "pushed" and share["reason"].endswith(TAGGED)
        assert _share(world, ours, vendor)["cancel_state"] == "cancelled"
    assert 'note "Out of stock, sorry"' in _share(world, cut, BOLT)["reason"]

    # The vendor ships it anyway: nothing is written to the merchant, no second alert.
    world.merchant.clear_log()
    alerted = len(receiver.alerts())
    world.bolt.add_tracking(bolt_cut, "USPS", "9405-CUT")
    again = world.run_tracking()  # Bolt's order changed: read again
    assert again.state == "success", "\n".join(again.lines)
    [line] = again.tracking(cut["name"], BOLT)
    assert again.outcomes(cut["name"], BOLT) == ["unchanged"]
    assert "no tracking is written back from it" in line and "USPS 9405-CUT" in line
    manual = world.run_tracking(order_ids=[cut["name"], ours["name"]])  # both read again, by hand
    assert manual.state == "success", "\n".join(manual.lines)
    assert manual.outcomes(cut["name"], ACME) == ["unchanged"] == manual.outcomes(cut["name"], BOLT)
    assert world.merchant.writes() == []
    assert world.merchant.get_order(cut["id"])["fulfillments"] == []
    assert len(receiver.alerts()) == alerted and len(_kinds(receiver)) == 2
    assert world.ledger().dump()["ordersync_shipments"] == []  # no shipment of it ever written or begun


def test_a_failed_tag_is_retried_by_the_next_run_with_no_second_alert(tracking_world, receiver, monkeypatch):
    world = tracking_world
    world.settings(**alert_settings())
    shop = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    woo = world.order([(BOLT, "BOLT-M6-100", 3, "9.50")])
    mirrored = world.order([(BOLT, "BOLT-DRILL-18V", 1, "129.00")])
    assert world.run().state == "success"
    acme_id, bolt_id = _vendor_order(world, shop, ACME), _vendor_order(world, woo, BOLT)
    world.acme.cancel_order(acme_id, reason="DECLINED")
    world.bolt.set_status(bolt_id, "refunded")  # the vendor refunded it (ordersync mirrored no refund)
    # WooCommerce marks an order refunded whole "refunded": here by a refund ordersync mirrored, not the vendor
    world.ledger().refunds.begin(
        mirrored["id"], BOLT, "gid://shopify/Refund/1", mirrored["name"], "1 x BOLT-DRILL-18V", "test"
    )
    world.bolt.set_status(_vendor_order(world, mirrored, BOLT), "refunded")

    # The vendors' webhooks wake an event run; the merchant store refuses the tags.
    ledger = world.ledger()
    ledger.inbox.record("ordersync_vendor_acme", "c1", "tracking_sync", "orders/cancelled", acme_id)
    ledger.inbox.record("ordersync_vendor_bolt", "c2", "tracking_sync", "order.updated", bolt_id)
    world.merchant.add_fault("tagsAdd", "http_error", status=503, times=-1)
    with monkeypatch.context() as event:
        event.setattr(dagkit, "is_event_run", lambda context: True)
        first = world.run_tracking()
    assert first.state == "failed"  # the writer failed the two tags
    for order, vendor in ((shop, ACME), (woo, BOLT)):
        [line] = first.tracking(order["name"], vendor)
        assert first.outcomes(order["name"], vendor) == ["failed"]
        assert (
            "reported (alert vendor_cancelled)" in line and f"tagging merchant order {order['name']}" in line
        )
        assert "retried on the next run, with no second alert" in line
        share = _share(world, order, vendor)
        assert share["cancel_state"] == "vendor_cancelled" and share["reason"].endswith(TAG_PENDING)
        assert TAG not in _tags(world, order)
    assert "cancelReason DECLINED" in first.tracking(shop["name"], ACME)[0]
    assert "status refunded" in first.tracking(woo["name"], BOLT)[0]
    assert sorted((a["order"], a["vendor"]) for a in _kinds(receiver)) == [
        (shop["name"], ACME),
        (woo["name"], BOLT),
    ]
    assert {a["operation"] for a in _kinds(receiver, "failed")} == {"tracking"}  # the failed tags, once each

    # The store is back: the next (scheduled) run writes the tags, and alerts nothing.
    world.merchant.clear_faults()
    received = len(receiver.received)
    second = world.run_tracking()
    assert second.state == "success", "\n".join(second.lines)
    for order, vendor in ((shop, ACME), (woo, BOLT)):
        [line] = second.tracking(order["name"], vendor)
        assert second.outcomes(order["name"], vendor) == ["cancelled"]
        assert "in an earlier run, not again" in line and "the earlier attempt had failed" in line
        assert TAG in _tags(world, order)
        assert _share(world, order, vendor)["reason"].endswith(TAGGED)
    assert len(receiver.received) == received and len(_kinds(receiver)) == 2
    assert second.outcomes(mirrored["name"], BOLT) == ["unchanged"]  # ordersync's refund: not reported
    assert _share(world, mirrored, BOLT)["cancel_state"] is None and TAG not in _tags(world, mirrored)

    # Read again by hand: said unchanged, nothing written, still one alert each.
    world.merchant.clear_log()
    third = world.run_tracking(order_ids=[shop["name"], woo["name"]])
    assert third.state == "success", "\n".join(third.lines)
    assert third.outcomes(shop["name"], ACME) == ["unchanged"] == third.outcomes(woo["name"], BOLT)
    assert world.merchant.writes() == [] and len(receiver.received) == received
    assert world.merchant.get_order(shop["id"])["cancelledAt"] is None


def test_a_private_note_a_person_left_on_a_woocommerce_cancellation_is_quoted(tracking_world, receiver):
    world = tracking_world
    world.settings(**alert_settings())
    cut = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    assert world.run().state == "success"
    bolt_cut = _vendor_order(world, cut, BOLT)
    world.bolt.add_note(bolt_cut, "Supplier discontinued the M6 bolts", author="Dana Cole")  # a private note
    world.bolt.update_order(bolt_cut, status="cancelled", manual_update=True)  # attributed to the API user
    assert world.bolt.notes(bolt_cut)[0]["author"] == world.bolt.api_user_name

    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    [line] = result.tracking(cut["name"], BOLT)
    assert 'not by ordersync (status cancelled, note "Supplier discontinued the M6 bolts")' in line
    [alert] = _kinds(receiver)
    assert 'note "Supplier discontinued the M6 bolts"' in alert["message"]
