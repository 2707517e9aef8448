"""tracking_sync end to end: order_sync pushes, the vendors ship in their own stores, tracking_sync writes the
shipments back to the merchant order. Airflow runs both DAGs; the stores are real HTTP servers on loopback."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

TRACKING_UPDATE = """
mutation Fix($id: ID!, $info: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $info) { userErrors { message } }
}"""


def _vendor_order(world, merchant_order, vendor):
    pair = world.ledger().pairs([merchant_order["id"]], vendor)[(merchant_order["id"], vendor)]
    return pair.vendor_order_id


def _merchant(world, order):
    return world.merchant.get_order(order["id"])


def _fulfilled(world, order):
    """(SKU, quantity) per merchant fulfilment, with its tracking."""
    out = []
    for f in _merchant(world, order)["fulfillments"]:
        lines = {}
        for fl in f["fulfillmentLineItems"]:
            li = next(li for li in _merchant(world, order)["lineItems"] if li["id"] == fl["lineItem"]["id"])
            lines[li["sku"]] = lines.get(li["sku"], 0) + fl["quantity"]
        out.append(
            {
                "id": f["id"],
                "lines": lines,
                "company": {t["company"] for t in f["trackingInfo"]},
                "numbers": [t["number"] for t in f["trackingInfo"]],
                "urls": [t["url"] for t in f["trackingInfo"]],
                "notify": f["_notifyCustomer"],
            }
        )
    return out


def _ops(store) -> list[str]:
    return [e["operation"] for e in store.writes()]


def test_shopify_vendor_partial_shipments_two_vendors_correction_rerun_and_notify(tracking_world):
    world = tracking_world
    solo = world.order([(ACME, "ACME-HAMMER", 3, "24.00"), (ACME, "ACME-WRENCH-L", 1, "19.00")])
    split = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")])
    quiet = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00")])
    assert world.run().state == "success"
    acme_solo, acme_split = _vendor_order(world, solo, ACME), _vendor_order(world, split, ACME)
    bolt_split = _vendor_order(world, split, BOLT)

    # Acme ships 2 of 3 hammers of #solo (partial) and all of its share of #split.
    first = world.acme.fulfill_order(
        acme_solo,
        {"ACME-HAMMER": 2},
        company="UPS",
        number="1Z001",
        url="https://www.ups.com/track?tracknum=1Z001",
    )
    world.acme.fulfill_order(acme_split, company="Fedex", number="FX001")
    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    assert result.outcomes(solo["name"], ACME) == ["written"]
    assert result.outcomes(split["name"], ACME) == ["written"]
    assert result.outcomes(split["name"], BOLT) == ["waiting"]
    assert result.outcomes(quiet["name"], ACME) == ["waiting"]
    assert (
        f"shipment {first['id']}: written — created merchant fulfilment"
        in result.tracking(solo["name"], ACME)[0]
    )
    [partial] = _fulfilled(world, solo)
    assert partial["lines"] == {"ACME-HAMMER": 2} and partial["numbers"] == ["1Z001"]
    assert partial["company"] == {"UPS"} and partial["urls"] == ["https://www.ups.com/track?tracknum=1Z001"]
    assert partial["notify"] is True  # notify_customer_on_tracking defaults to true
    assert _merchant(world, solo)["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    [acme_part] = _fulfilled(world, split)
    assert acme_part["lines"] == {"ACME-HAMMER": 1} and acme_part["company"] == {"FedEx"}  # carrier map
    assert (
        _merchant(world, split)["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    )  # Bolt has not shipped
    assert world.ledger().watermark(f"tracking:{ACME}") is not None

    # The rest of #solo ships; the first shipment's number is corrected and gets a second parcel; Bolt ships #split.
    world.settings(notify_customer_on_tracking=False)
    world.acme.fulfill_order(
        acme_solo, {"ACME-HAMMER": 1, "ACME-WRENCH-L": 1}, company="USPS", number="9400111"
    )
    fixed = world.acme.graphql(
        TRACKING_UPDATE, {"id": first["id"], "info": {"company": "UPS", "numbers": ["1Z001-FIXED", "1Z002"]}}
    )
    assert not fixed.get("errors"), fixed
    world.bolt.add_tracking(bolt_split, "USPS", "9405000")
    assert world.bolt.get_order(bolt_split)["status"] == "processing"
    world.merchant.clear_log()
    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    assert sorted(result.outcomes(solo["name"], ACME)) == ["written", "written"]
    assert any(
        "updated the tracking of merchant fulfilment" in l and "1Z001 → UPS 1Z001-FIXED, 1Z002" in l
        for l in result.tracking(solo["name"], ACME)
    )
    assert result.outcomes(split["name"], BOLT) == ["written"]
    assert sorted(_ops(world.merchant)) == [
        "fulfillmentCreate",
        "fulfillmentCreate",
        "fulfillmentTrackingInfoUpdate",
    ]
    shipments = _fulfilled(world, solo)
    assert len(shipments) == 2  # corrected in place, no new fulfilment
    assert shipments[0]["id"] == partial["id"] and shipments[0]["numbers"] == ["1Z001-FIXED", "1Z002"]
    assert shipments[0]["notify"] is False
    assert shipments[1]["lines"] == {"ACME-HAMMER": 1, "ACME-WRENCH-L": 1} and shipments[1]["notify"] is False
    assert _merchant(world, solo)["displayFulfillmentStatus"] == "FULFILLED"
    bolt_part = _fulfilled(world, split)[1]
    assert bolt_part["lines"] == {"BOLT-M6-100": 2} and bolt_part["numbers"] == ["9405000"]
    assert bolt_part["company"] == {"USPS"} and bolt_part["urls"][0].endswith("9405000")
    assert _merchant(world, split)["displayFulfillmentStatus"] == "FULFILLED"  # both vendors shipped

    # A rerun, scheduled or by hand, writes nothing.
    world.merchant.clear_log()
    again = world.run_tracking()
    manual = world.run_tracking(order_ids=[solo["name"], split["name"]])
    assert again.state == "success" and manual.state == "success"
    assert world.merchant.writes() == []
    assert set(manual.outcomes(solo["name"], ACME)) == {"unchanged"}
    assert manual.outcomes(split["name"], BOLT) == ["unchanged"]
    rows = world.ledger().dump()["ordersync_shipments"]
    assert len(rows) == 4 and {r["state"] for r in rows} == {"written"}


def test_woocommerce_items_dropped_connection_and_dry_run(tracking_world):
    world = tracking_world
    woo = world.order([(BOLT, "BOLT-M6-100", 2, "9.50"), (BOLT, "BOLT-DRILL-18V", 1, "129.00")])
    shop = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    assert world.run().state == "success"
    bolt_id, acme_id = _vendor_order(world, woo, BOLT), _vendor_order(world, shop, ACME)
    world.bolt.add_tracking(bolt_id, "Royal Mail", "RM001")
    world.acme.fulfill_order(acme_id, company="DHL", number="DHL001")
    world.merchant.clear_log()

    # Dry run: every decision logged, nothing written, no watermark, no shipment rows.
    dry = world.run_tracking(dry_run=True)
    assert dry.state == "success", "\n".join(dry.lines)
    assert dry.outcomes(woo["name"], BOLT) == ["written"] and dry.outcomes(shop["name"], ACME) == ["written"]
    assert all(line.startswith("[dry run] ") for line in dry.tracking(woo["name"], BOLT))
    assert world.merchant.writes() == []
    assert world.ledger().dump()["ordersync_shipments"] == []
    assert world.ledger().watermark(f"tracking:{BOLT}") is None

    # The connection drops after the merchant committed the first fulfillmentCreate: looked up, not repeated.
    world.merchant.add_fault("fulfillmentCreate", "drop_after")
    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    assert _ops(world.merchant) == ["fulfillmentCreate", "fulfillmentCreate"]
    assert any("found (the interrupted fulfillmentCreate had succeeded)" in l for l in result.lines)
    [woo_f] = _fulfilled(world, woo)
    assert woo_f["lines"] == {"BOLT-M6-100": 2, "BOLT-DRILL-18V": 1}  # a tracking item ships every open line
    assert woo_f["numbers"] == ["RM001"] and woo_f["company"] == {"Royal Mail"}
    assert woo_f["urls"][0].startswith("https://www.royalmail.com/") and woo_f["urls"][0].endswith("RM001")
    [shop_f] = _fulfilled(world, shop)
    assert shop_f["company"] == {"DHL Express"} and shop_f["numbers"] == ["DHL001"]
    assert _merchant(world, woo)["displayFulfillmentStatus"] == "FULFILLED"

    # WooCommerce cannot say "partial": a second tracking item (the order still processing) adds its number.
    assert world.bolt.get_order(bolt_id)["status"] == "processing"
    world.bolt.add_tracking(bolt_id, "Speedy Parcels", "SP-9", link="https://speedy.example/t/%1$s")
    world.merchant.clear_log()
    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    assert sorted(result.outcomes(woo["name"], BOLT)) == ["unchanged", "written"]
    assert _ops(world.merchant) == ["fulfillmentTrackingInfoUpdate"]
    [woo_f] = _fulfilled(world, woo)
    assert woo_f["numbers"] == ["RM001", "SP-9"]
    sent = json.dumps([e["body"] for e in world.merchant.log()])
    assert "https://speedy.example/t/SP-9" in sent
