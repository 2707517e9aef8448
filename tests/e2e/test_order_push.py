"""order_sync end to end: Airflow runs the DAG; the stores are real HTTP servers on loopback."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ACME, BOLT, BUYER, MERCHANT_CONTACT

pytestmark = pytest.mark.e2e


def _line_skus_acme(order):
    return sorted((li.get("sku") or "", li["quantity"]) for li in order["lineItems"])


def _line_skus_bolt(order):
    return sorted((li.get("sku") or "", li["quantity"]) for li in order["line_items"])


def test_split_across_platforms_pushes_each_share_once(world):
    """One order with lines from a Shopify vendor and a WooCommerce vendor: each gets exactly its lines."""
    merchant = world.order(
        [
            (ACME, "ACME-HAMMER", 2, "24.00"),
            (BOLT, "BOLT-M6-100", 3, "9.50"),
            (ACME, "ACME-WRENCH-L", 1, "19.00"),
        ]
    )
    result = world.run()
    assert result.state == "success", result.lines
    assert result.outcome(merchant["name"], ACME) == "pushed"
    assert result.outcome(merchant["name"], BOLT) == "pushed"

    [acme] = world.acme_orders()
    assert _line_skus_acme(acme) == [("ACME-HAMMER", 2), ("ACME-WRENCH-L", 1)]
    variant_ids = sorted(li["variant"]["id"] for li in acme["lineItems"])
    assert variant_ids == sorted([world.acme_variants["ACME-HAMMER"], world.acme_variants["ACME-WRENCH-L"]])
    assert acme["sourceIdentifier"] == f"ordersync-{merchant['legacyResourceId']}"
    assert f"merchant-order-{merchant['name'].lstrip('#')}" in acme["tags"]
    assert acme["displayFinancialStatus"] == "PAID"
    assert acme["currencyCode"] == "USD"
    assert acme["note"] == merchant["note"]
    assert acme["_options"]["sendReceipt"] is False
    assert acme["_options"]["inventoryBehaviour"] == "DECREMENT_OBEYING_POLICY"

    [bolt] = world.bolt_orders()
    assert [(li["product_id"], li["quantity"]) for li in bolt["line_items"]] == [(world.bolt_bolts["id"], 3)]
    assert bolt["status"] == "processing" and bolt["date_paid"]
    meta = {m["key"]: m["value"] for m in bolt["meta_data"]}
    assert meta["_ordersync_marker"] == f"ordersync-{merchant['legacyResourceId']}"
    assert meta["_ordersync_merchant_order"] == merchant["name"]
    assert bolt["total"] == "28.50"
    assert bolt["shipping"]["address_1"] == "1 Main St"

    # The ledger says where each share went.
    pairs = world.ledger().pairs([merchant["id"]])
    assert pairs[(merchant["id"], ACME)].state == "pushed"
    assert pairs[(merchant["id"], ACME)].vendor_order_id == acme["id"]
    assert pairs[(merchant["id"], BOLT)].vendor_order_id == str(bolt["id"])

    # A second run creates nothing new and writes nothing to any vendor store.
    writes_before = len(world.vendor_writes())
    again = world.run()
    assert again.state == "success"
    assert len(world.acme_orders()) == 1 and len(world.bolt_orders()) == 1
    assert len(world.vendor_writes()) == writes_before


def test_push_only_if_paid_on_holds_pending_then_off_pushes_it(world):
    paid = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")], status="PAID")
    pending = world.order([(BOLT, "BOLT-DRILL-18V", 1, "129.00")], status="PENDING")
    result = world.run()
    assert result.outcome(paid["name"], BOLT) == "pushed"
    assert result.outcome(pending["name"], BOLT) == "held"
    assert "PENDING, not PAID" in result.decisions(pending["name"], BOLT)[0]
    assert len(world.bolt_orders()) == 1

    world.settings(push_only_if_paid=False)
    world.merchant.update_order(pending["id"], note="touched")  # any change brings it back in
    result = world.run()
    assert result.outcome(pending["name"], BOLT) == "pushed"
    orders = world.bolt_orders()
    assert len(orders) == 2
    pushed = [o for o in orders if o["line_items"][0].get("variation_id") == world.bolt_drill["id"]]
    assert pushed and pushed[0]["status"] == "pending" and not pushed[0].get("date_paid")


def test_order_status_filter(world):
    world.settings(push_only_if_paid=False, order_status_filter=["AUTHORIZED"])
    authorized = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], status="AUTHORIZED")
    paid = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], status="PAID")
    result = world.run()
    assert result.outcome(authorized["name"], ACME) == "pushed"
    assert result.outcome(paid["name"], ACME) == "skipped"
    assert (
        'not in the status filter (order_status_filter=["AUTHORIZED"], global)'
        in result.decisions(paid["name"], ACME)[0]
    )
    [acme] = world.acme_orders()
    assert acme["displayFinancialStatus"] == "AUTHORIZED"


def test_unmapped_lines_held_then_pushed_once_mapping_exists(world):
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (ACME, "ACME-SAW-X", 1, "40.00")])
    result = world.run()
    assert result.outcome(order["name"], ACME) == "held"
    assert "ACME-SAW-X" in result.decisions(order["name"], ACME)[0]
    assert world.acme_orders() == []

    # The vendor adds the product; the next scheduled run pushes the held share without the order changing.
    saw = world.acme.add_product("Saw", sku="ACME-SAW-X", price="40.00")
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed"
    [acme] = world.acme_orders()
    assert sorted(li["variant"]["id"] for li in acme["lineItems"]) == sorted(
        [world.acme_variants["ACME-HAMMER"], saw["variants"][0]["id"]]
    )


def test_unmapped_lines_pushed_as_custom_lines_when_allowed(world):
    world.settings(push_unmapped_products=True)
    order = world.order(
        [(ACME, "ACME-SAW-X", 2, "40.00"), (BOLT, "BOLT-NOPE", 1, "5.00"), (BOLT, "BOLT-M6-100", 1, "9.50")]
    )
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed"
    assert result.outcome(order["name"], BOLT) == "pushed"
    [acme] = world.acme_orders()
    [custom] = acme["lineItems"]
    assert custom["variant"] is None and custom["sku"] == "ACME-SAW-X" and custom["quantity"] == 2
    assert custom["originalUnitPriceSet"]["shopMoney"]["amount"] in ("40.00", "40.0")
    assert custom["title"] == "ACME-SAW-X title"
    [bolt] = world.bolt_orders()
    assert [li["product_id"] for li in bolt["line_items"]] == [world.bolt_bolts["id"]]
    [fee] = bolt["fee_lines"]  # WooCommerce needs a product for a line item: the custom line is a fee line
    assert fee["name"] == "BOLT-NOPE title × 1" and fee["total"] == "5.00"
    assert {"key": "SKU", "value": "BOLT-NOPE"} in [
        {"key": m["key"], "value": m["value"]} for m in fee["meta_data"]
    ]
    assert bolt["total"] == "14.50"


def _everything_received(world) -> str:
    """Every request body any vendor store received, as one string."""
    return json.dumps([entry["body"] for entry in world.acme.requests + world.bolt.requests])


def test_customer_override_keeps_buyer_contact_away_from_vendors(world):
    world.settings(override_customer_data=True, merchant_contact=MERCHANT_CONTACT)
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed" and result.outcome(order["name"], BOLT) == "pushed"

    received = _everything_received(world)
    for secret in (BUYER["email"], BUYER["phone"], BUYER["address_phone"]):
        assert secret not in received
    # The buyer's name travels only as the shipping recipient.
    [acme] = world.acme_orders()
    [bolt] = world.bolt_orders()
    assert (
        acme["shippingAddress"]["firstName"] == BUYER["first"]
        and acme["shippingAddress"]["lastName"] == BUYER["last"]
    )
    assert acme["shippingAddress"]["phone"] == MERCHANT_CONTACT["phone"]
    assert (
        bolt["shipping"]["first_name"] == BUYER["first"]
        and bolt["shipping"]["phone"] == MERCHANT_CONTACT["phone"]
    )
    [acme_create] = [
        e["body"]["variables"]["order"] for e in world.acme.requests if e["operation"] == "orderCreate"
    ]
    [bolt_create] = [e["body"] for e in world.bolt.requests if e["operation"] == "POST /orders"]
    assert [k for k, v in acme_create.items() if BUYER["last"] in json.dumps(v)] == ["shippingAddress"]
    assert [k for k, v in bolt_create.items() if BUYER["last"] in json.dumps(v)] == ["shipping"]
    assert BUYER["first"] not in json.dumps({k: v for k, v in acme_create.items() if k != "shippingAddress"})
    # Customer and billing contact are the merchant's.
    assert acme["email"] == MERCHANT_CONTACT["email"] and acme["phone"] == MERCHANT_CONTACT["phone"]
    assert (
        acme["billingAddress"]["firstName"] == "Market" and acme["billingAddress"]["lastName"] == "Place Ops"
    )
    assert acme["customer"]["defaultEmailAddress"]["emailAddress"] == MERCHANT_CONTACT["email"]
    assert (
        bolt["billing"]["email"] == MERCHANT_CONTACT["email"]
        and bolt["billing"]["phone"] == MERCHANT_CONTACT["phone"]
    )
    assert bolt["billing"]["first_name"] == "Market"


def test_customer_override_off_sends_the_buyer(world):
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    assert world.run().outcome(order["name"], BOLT) == "pushed"
    [acme] = world.acme_orders()
    [bolt] = world.bolt_orders()
    assert acme["email"] == BUYER["email"]
    assert acme["customer"]["defaultEmailAddress"]["emailAddress"] == BUYER["email"]
    assert bolt["billing"]["email"] == BUYER["email"] and bolt["billing"]["first_name"] == BUYER["first"]
    assert bolt["shipping"]["phone"] == BUYER["address_phone"]


def test_unknown_vendor_line_is_reported_and_the_rest_pushed(world):
    order = world.order(
        [(BOLT, "BOLT-M6-100", 1, "9.50"), ("Zed Goods", "ZED-1", 1, "3.00"), (None, "LOOSE-1", 1, "1.00")]
    )
    result = world.run()
    assert result.state == "success"
    assert result.outcome(order["name"], BOLT) == "pushed"
    assert result.outcome(order["name"], "Zed Goods") == "skipped"
    assert "not in ordersync_vendors" in result.decisions(order["name"], "Zed Goods")[0]
    assert any("line item has no vendor" in line for line in result.decisions(order["name"]))
    [bolt] = world.bolt_orders()
    assert len(bolt["line_items"]) == 1 and world.acme_orders() == []


def test_disabled_vendor_and_inactive_platform_get_nothing(world):
    vendors = [dict(v) for v in world.vendors]
    vendors[0]["enabled"] = False
    world.set_vendors(vendors)
    world.settings(order_push_platforms=["shopify"])
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.outcome(order["name"], ACME) == "skipped"
    assert "disabled" in result.decisions(order["name"], ACME)[0]
    assert result.outcome(order["name"], BOLT) == "skipped"
    assert "order push for platform woocommerce is not active" in result.decisions(order["name"], BOLT)[0]
    assert world.vendor_writes() == []


def test_sync_disabled_pushes_nothing_and_keeps_the_watermark(world):
    world.settings(order_sync_enabled=False)
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.state == "success"
    assert result.outcome(order["name"], ACME) == "skipped"
    assert "switched off" in result.decisions(order["name"], ACME)[0]
    assert world.vendor_writes() == []
    assert world.ledger().watermark("merchant_orders") is None

    world.settings()  # back on: the order placed while off is pushed
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed" and result.outcome(order["name"], BOLT) == "pushed"


def test_dry_run_logs_every_decision_and_writes_nothing(world):
    pushed_before = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    assert world.run().outcome(pushed_before["name"], ACME) == "pushed"
    ledger_before = world.ledger().dump()
    writes_before = len(world.vendor_writes())

    new = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    pending = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")], status="PENDING")
    result = world.run(dry_run=True)
    assert result.state == "success"
    assert result.outcome(new["name"], ACME) == "pushed"
    assert all(line.startswith("[dry run]") for line in result.decisions(new["name"]))
    assert "would create" in result.decisions(new["name"], BOLT)[0]
    assert result.outcome(pending["name"], BOLT) == "held"
    assert len(world.vendor_writes()) == writes_before
    assert world.ledger().dump() == ledger_before
    assert world.ledger().dump(include_scratch=True)["ordersync_run_orders"] == []

    # The real run afterwards still pushes them: nothing was consumed by the dry run.
    result = world.run()
    assert result.outcome(new["name"], ACME) == "pushed" and result.outcome(new["name"], BOLT) == "pushed"


def test_manual_run_with_order_ids_pushes_only_those(world):
    first = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    second = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    third = world.order([(BOLT, "BOLT-M6-100", 2, "9.50")])
    result = world.run(order_ids=[second["name"], third["legacyResourceId"]])
    assert result.outcome(second["name"], BOLT) == "pushed"
    assert result.outcome(third["name"], BOLT) == "pushed"
    assert result.decisions(first["name"]) == []
    assert world.acme_orders() == [] and len(world.bolt_orders()) == 2
    assert world.ledger().watermark("merchant_orders") is None  # a manual selection moves no watermark

    # Re-running the same selection never creates a second vendor order.
    again = world.run(order_ids=[second["id"]])
    assert "already pushed" in again.decisions(second["name"], BOLT)[0]
    assert len(world.bolt_orders()) == 2
    # The scheduled path still picks up the rest.
    assert world.run().outcome(first["name"], ACME) == "pushed"


def test_vendors_param_limits_the_run(world):
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run(vendors=[BOLT])
    assert result.outcome(order["name"], BOLT) == "pushed"
    assert result.decisions(order["name"], ACME) == []
    assert world.acme_orders() == []
    assert world.run().outcome(order["name"], ACME) == "pushed"


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_connection_dropped_after_commit_leaves_exactly_one_vendor_order(world, platform):
    vendor, store, op = (
        (ACME, world.acme, "orderCreate") if platform == "shopify" else (BOLT, world.bolt, "POST /orders")
    )
    sku = "ACME-HAMMER" if platform == "shopify" else "BOLT-M6-100"
    order = world.order([(vendor, sku, 1, "24.00")])
    store.add_fault(op, "drop_after")
    result = world.run()
    assert result.outcome(order["name"], vendor) == "pushed"
    assert "interrupted create had succeeded" in result.decisions(order["name"], vendor)[0]
    assert len(store.orders) == 1
    assert world.run().outcome(order["name"], vendor) == "unchanged"
    assert len(store.orders) == 1


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_crash_between_create_and_ledger_is_recovered_on_the_next_run(world, platform):
    """The vendor committed, the answer was lost and every in-task retry failed: the next run finds the order."""
    vendor, store, op = (
        (ACME, world.acme, "orderCreate") if platform == "shopify" else (BOLT, world.bolt, "POST /orders")
    )
    lookup = "orders" if platform == "shopify" else "GET /orders"
    sku = "ACME-HAMMER" if platform == "shopify" else "BOLT-M6-100"
    order = world.order([(vendor, sku, 1, "24.00")])
    store.add_fault(op, "drop_after")
    store.add_fault(lookup, "http_error", times=50, status=503)
    result = world.run()
    assert result.state == "failed"
    assert result.outcome(order["name"], vendor) == "failed"
    assert world.ledger().pairs([order["id"]])[(order["id"], vendor)].state == "unknown"
    assert len(store.orders) == 1
    store.faults.clear()
    result = world.run()
    assert result.outcome(order["name"], vendor) == "pushed"
    assert "interrupted attempt" in result.decisions(order["name"], vendor)[0]
    assert len(store.orders) == 1


def test_throttled_and_429_are_waited_out(world):
    world.acme.add_fault("orderCreate", "throttled", times=2)
    world.merchant.add_fault("orders", "throttled", times=1)
    world.bolt.add_fault("POST /orders", "http_error", status=429, times=2, retry_after=0.2)
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.state == "success", result.lines
    assert result.outcome(order["name"], ACME) == "pushed" and result.outcome(order["name"], BOLT) == "pushed"
    assert len(world.acme_orders()) == 1 and len(world.bolt_orders()) == 1
    statuses = [e["status"] for e in world.bolt.requests if e["operation"] == "POST /orders"]
    assert statuses == [429, 429, 201]
    assert [e["fault"] for e in world.acme.requests if e["operation"] == "orderCreate"] == [
        "throttled",
        "throttled",
        None,
    ]


def test_real_cost_bucket_is_respected(world):
    """A small bucket forces waits for the bucket to refill; nothing fails."""
    world.merchant.bucket_size = 900.0
    world.merchant.available = 900.0
    world.merchant.restore_rate = 2000.0
    orders = [world.order([(ACME, "ACME-HAMMER", 1, "24.00")]) for _ in range(25)]
    result = world.run()
    assert result.state == "success"
    assert all(result.outcome(o["name"], ACME) == "pushed" for o in orders)
    assert len(world.acme_orders()) == 25


def test_one_failing_order_does_not_stop_the_batch(world):
    bad = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.acme.add_fault("orderCreate", "http_error", status=422, times=1)
    good = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.state == "failed"
    assert result.outcome(bad["name"], ACME) == "failed"
    assert result.outcome(good["name"], ACME) == "pushed" and result.outcome(good["name"], BOLT) == "pushed"
    assert result.task_states["push_vendor_orders"].count("failed") == 1
    # The failed share is retried on the next run and goes through.
    result = world.run()
    assert result.outcome(bad["name"], ACME) == "pushed"
    assert len(world.acme_orders()) == 2


def test_locations_addon_assigns_the_vendor_location(world):
    location = world.acme.add_location("Warehouse East")
    vendors = [dict(v) for v in world.vendors]
    vendors[0]["location_id"] = location["id"]
    vendors[1]["location_id"] = "ignored-by-woocommerce"
    world.set_vendors(vendors)
    world.settings(locations_addon=True)
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed" and result.outcome(order["name"], BOLT) == "pushed"
    [acme] = world.acme_orders()
    assert {fo["assignedLocation"]["location"]["id"] for fo in acme["fulfillmentOrders"]} == {location["id"]}


def test_push_on_postgres_ledger(pg_world):
    order = pg_world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = pg_world.run()
    assert result.state == "success"
    assert result.outcome(order["name"], ACME) == "pushed" and result.outcome(order["name"], BOLT) == "pushed"
    assert pg_world.ledger().url.startswith("postgresql")
    assert pg_world.ledger().watermark("merchant_orders") is not None
    assert pg_world.run().outcome(order["name"], ACME) == "unchanged"
    assert len(pg_world.acme_orders()) == 1 and len(pg_world.bolt_orders()) == 1


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_product_deleted_at_the_vendor_drops_the_cached_mapping(world, platform):
    """The SKU mapping is cached after the first push; the vendor then deletes the product. The next create is
    refused, the stale mapping dropped, and the run after that holds the order until the SKU is mapped again."""
    vendor, sku, price = (
        (ACME, "ACME-HAMMER", "24.00") if platform == "shopify" else (BOLT, "BOLT-M6-100", "9.50")
    )
    first = world.order([(vendor, sku, 1, price)])
    assert world.run().outcome(first["name"], vendor) == "pushed"
    assert sku in world.ledger().cached_mappings(vendor, [sku])
    if platform == "shopify":
        world.acme.products[:] = [
            p for p in world.acme.products if all(v["sku"] != sku for v in p["variants"])
        ]
    else:
        del world.bolt._products[world.bolt_bolts["id"]]

    second = world.order([(vendor, sku, 1, price)])
    refused = world.run()
    assert refused.outcome(second["name"], vendor) == "failed"
    [line] = refused.decisions(second["name"], vendor)
    assert f"the mapping of {sku} is dropped and looked up again on the next run" in line
    assert world.ledger().cached_mappings(vendor, [sku]) == {}

    held = world.run()
    assert held.outcome(second["name"], vendor) == "held", "\n".join(held.lines)
    assert sku in held.decisions(second["name"], vendor)[0]
    assert len(world.acme_orders() if platform == "shopify" else world.bolt_orders()) == 1
