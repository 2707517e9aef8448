"""The fault matrix: both vendor platforms × {5xx, 429/THROTTLED, timeout, connection dropped before the store
acted, dropped after it acted} × {create, update, cancel, refund, tracking write-back}.

Each case runs the real DAG against the sandbox stores over HTTP with the fault on every matching request
(the store stays broken for the whole run), then runs again healthy. Each time:

* exactly one vendor order per (merchant order, vendor), and at most one merchant fulfilment per shipment;
* the order is either synced in the faulty run (an outcome that may have been committed is looked up, and the
  lookup finds it) or recorded ``failed`` with the store's message in the log and the ledger, and listed in
  the run's one alert with the operation and what to do;
* the next healthy run syncs it.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ACME, BOLT, alert_settings

pytestmark = pytest.mark.e2e

VENDORS = {"shopify": (ACME, "ACME-HAMMER", "24.00"), "woocommerce": (BOLT, "BOLT-M6-100", "9.50")}
# The request each operation's fault hits: the vendor store's write, or for tracking the merchant's.
TARGET_OP = {
    ("shopify", "create"): "orderCreate",
    ("woocommerce", "create"): "POST /orders",
    ("shopify", "update"): "orderUpdate",
    ("woocommerce", "update"): "PUT /orders/{id}",
    ("shopify", "cancel"): "orderCancel",
    ("woocommerce", "cancel"): "PUT /orders/{id}",
    ("shopify", "refund"): "refundCreate",
    ("woocommerce", "refund"): "POST /orders/{id}/refunds",
    ("shopify", "tracking"): "fulfillmentCreate",
    ("woocommerce", "tracking"): "fulfillmentCreate",
}
FAULTS = {
    "5xx": {"kind": "http_error", "status": 503},
    "throttled": {
        "kind": "throttled",
        "retry_after": 0.05,
    },  # GraphQL THROTTLED at Shopify, 429 at WooCommerce
    "timeout": {"kind": "timeout", "delay": 1.2},  # the client gives up after 0.5 s
    "drop_before": {"kind": "drop_before"},
    "drop_after": {"kind": "drop_after"},
}
# Synced within the faulty run: a create or a fulfilment whose answer was lost is found by its marker /
# tracking number. Everything else fails for this run and is synced by the next one.
MENDED_IN_RUN = {("create", "drop_after"), ("tracking", "drop_after")}
DONE = {
    "create": "pushed",
    "update": "updated",
    "cancel": "cancelled",
    "refund": "refunded",
    "tracking": "written",
}
CLIENT_TIMEOUT = 0.5


def _short_timeouts(world, monkeypatch):
    """Every store connection gives up on an answer after CLIENT_TIMEOUT seconds."""
    for store, conn_id in (
        (world.merchant, "ordersync_merchant"),
        (world.acme, "ordersync_vendor_acme"),
        (world.bolt, "ordersync_vendor_bolt"),
    ):
        name, value = world.sandbox.connection_env(store, conn_id)
        conn = json.loads(value)
        conn["extra"] = {**(conn.get("extra") or {}), "timeout": CLIENT_TIMEOUT}
        monkeypatch.setenv(name, json.dumps(conn))


def _vendor_order_ids(world, platform: str, merchant_order) -> list[str]:
    """The vendor orders that carry this merchant order's link-back marker."""
    from ordersync.models import MerchantOrder
    from ordersync.orders.split import marker_for

    marker = marker_for(MerchantOrder.model_construct(legacy_id=merchant_order["id"].rsplit("/", 1)[-1]))
    if platform == "shopify":
        return [o["id"] for o in world.acme.orders if o.get("sourceIdentifier") == marker]
    return [
        str(o["id"])
        for o in world.bolt.orders
        if any(
            m.get("key") == "_ordersync_marker" and m.get("value") == marker for m in o.get("meta_data") or []
        )
    ]


def _ship(world, platform: str, merchant_order) -> None:
    vendor = VENDORS[platform][0]
    pair = world.ledger().pairs([merchant_order["id"]], vendor)[(merchant_order["id"], vendor)]
    if platform == "shopify":
        world.acme.fulfill_order(pair.vendor_order_id, company="UPS", number="1ZFAULT1")
    else:
        world.bolt.add_tracking(pair.vendor_order_id, "UPS", "1ZFAULT2")
        world.bolt.set_status(pair.vendor_order_id, "completed")


def _prepare(world, platform: str, operation: str):
    """A merchant order with work of the given kind waiting for the vendor (or, for tracking, the merchant)."""
    vendor, sku, price = VENDORS[platform]
    order = world.order([(vendor, sku, 2 if operation == "refund" else 1, price)])
    if operation == "create":
        return order
    assert world.run().outcome(order["name"], vendor) == "pushed"
    if operation == "update":
        world.merchant.update_order(order["id"], note="leave it at the back door")
    elif operation == "cancel":
        world.merchant.cancel_order(order["id"], reason="CUSTOMER")
    elif operation == "refund":  # one of the two units: a refund, not a cancellation
        world.merchant.refund_order(order["id"], quantities={sku: 1}, restock=True)
    else:
        _ship(world, platform, order)
    return order


def _run(world, operation: str):
    return world.run_tracking() if operation == "tracking" else world.run()


def _outcomes(result, operation, order, vendor) -> list[str]:
    if operation == "tracking":
        return result.outcomes(order["name"], vendor)
    return [result.outcome(order["name"], vendor)]


def _merchant_fulfillments(world, order) -> int:
    return len(world.merchant.get_order(order["id"])["fulfillments"])


def _check_synced(world, platform, operation, order) -> None:
    """The operation's effect is in the target store, once."""
    vendor = VENDORS[platform][0]
    [vendor_order_id] = _vendor_order_ids(world, platform, order)
    if operation == "update":
        note = (
            world.acme.get_order(vendor_order_id)["note"]
            if platform == "shopify"
            else world.bolt.get_order(vendor_order_id)["customer_note"]
        )
        assert "leave it at the back door" in note
    elif operation == "cancel":
        if platform == "shopify":
            assert world.acme.get_order(vendor_order_id)["cancelledAt"]
        else:
            assert world.bolt.get_order(vendor_order_id)["status"] == "cancelled"
    elif operation == "refund":
        if platform == "shopify":
            refunds = world.acme.get_order(vendor_order_id).get("refunds") or []
            assert [sum(i["quantity"] for i in r["refundLineItems"]) for r in refunds] == [1]
        else:
            assert len(world.bolt.get_order(vendor_order_id).get("refunds") or []) == 1
        [row] = world.ledger().refunds.for_share(order["id"], vendor)
        assert row.state == "recorded"
    elif operation == "tracking":
        [fulfillment] = world.merchant.get_order(order["id"])["fulfillments"]
        assert [t["number"] for t in fulfillment["trackingInfo"]] in (["1ZFAULT1"], ["1ZFAULT2"])
    pair = world.ledger().pairs([order["id"]], vendor)[(order["id"], vendor)]
    assert pair.state == "pushed" and pair.vendor_order_id == vendor_order_id


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("operation", ["create", "update", "cancel", "refund", "tracking"])
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_fault(tracking_world, receiver, monkeypatch, platform, operation, fault):
    world = tracking_world
    world.settings(**alert_settings())
    _short_timeouts(world, monkeypatch)
    # A store that throttles for the whole run: Shopify's client gives up after max_throttle_waits x cap (20 x 0.25 s)
    monkeypatch.setenv("ORDERSYNC_RETRY_CAP_SECONDS", "0.25")
    vendor = VENDORS[platform][0]
    order = _prepare(world, platform, operation)
    posts_before = len(receiver.received)

    target = (
        world.merchant if operation == "tracking" else (world.acme if platform == "shopify" else world.bolt)
    )
    target.add_fault(TARGET_OP[(platform, operation)], times=-1, **FAULTS[fault])
    faulty = _run(world, operation)
    requests = target.log()
    hit = [e for e in requests if e["fault"] == FAULTS[fault]["kind"]]
    assert hit, f"the fault never fired: {[e['operation'] for e in requests][-10:]}"
    # Only a create the store carried out (its answer dropped after) can exist after a faulty create.
    expected_orders = 0 if operation == "create" and fault != "drop_after" else 1
    assert len(_vendor_order_ids(world, platform, order)) == expected_orders
    if operation == "tracking":
        assert _merchant_fulfillments(world, order) <= 1

    outcomes = _outcomes(faulty, operation, order, vendor)
    if (operation, fault) in MENDED_IN_RUN:
        assert outcomes == [DONE[operation]], "\n".join(faulty.lines)
        assert faulty.state == "success"
        assert "found" in " ".join(faulty.decisions(order["name"], vendor))
        assert len(receiver.received) == posts_before  # nothing to alert
        _check_synced(world, platform, operation, order)
    else:
        assert outcomes == ["failed"], "\n".join(faulty.lines)
        assert faulty.state == "failed"
        line = (
            faulty.tracking(order["name"], vendor)
            if operation == "tracking"
            else faulty.decisions(order["name"], vendor)
        )[0]
        run_key = world.last_run_key("tracking_sync" if operation == "tracking" else "order_sync")
        recorded = [
            d
            for d in world.ledger().decisions_for_run(run_key)
            if d["merchant_order_id"] == order["id"] and d["outcome"] == "failed"
        ]
        assert recorded and recorded[-1]["operation"] == operation and recorded[-1]["reason"]
        # The log line carries the store's message the ledger recorded (a tracking row prefixes its shipment).
        reason = recorded[-1]["reason"].removeprefix(f"tracking shipment {recorded[-1]['subject']}: ")
        assert reason in line, line
        # The run's one alert lists it, with the operation, the error and what to do.
        assert len(receiver.received) == posts_before + 1
        [item] = [a for a in receiver.received[-1]["body"]["alerts"] if a["order"] == order["name"]]
        assert item["kind"] == "failed" and item["vendor"] == vendor and item["operation"] == operation
        assert item["message"] == recorded[-1]["reason"] and item["suggestion"]

        target.clear_faults()
        healthy = _run(world, operation)
        assert healthy.state == "success", "\n".join(healthy.lines)
        assert _outcomes(healthy, operation, order, vendor) == [DONE[operation]], "\n".join(healthy.lines)
        assert len(receiver.received) == posts_before + 1  # a healthy run alerts nothing
        _check_synced(world, platform, operation, order)
    assert len(_vendor_order_ids(world, platform, order)) == 1
    if operation == "refund":  # never a second refund, whatever failed
        _check_synced(world, platform, operation, order)
