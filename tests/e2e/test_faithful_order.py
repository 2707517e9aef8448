"""A faithful vendor order (issue 16): shipping method and price, discounted line prices, Shopify tax lines.

Airflow runs order_sync against the sandbox stores over real HTTP: the merchant (Shopify), Acme Tools
(Shopify vendor), Bolt Supply (WooCommerce vendor) and, where three vendors share an order, Clamp Co (a
second Shopify vendor added here).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

CLAMP = "Clamp Co"


def amount(bag: dict[str, Any] | None) -> Decimal:
    return Decimal(str((bag or {}).get("shopMoney", {}).get("amount", "0")))


def acme_shipping(order: dict[str, Any]) -> list[tuple[str, str | None, str | None, Decimal]]:
    return [
        (s["title"], s["code"], s["source"], amount(s["discountedPriceSet"])) for s in order["shippingLines"]
    ]


def bolt_shipping(order: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    return [(s["method_title"], s["method_id"], Decimal(s["total"])) for s in order["shipping_lines"]]


def acme_subtotal(order: dict[str, Any]) -> Decimal:
    return sum((amount(li["originalUnitPriceSet"]) * li["quantity"] for li in order["lineItems"]), Decimal(0))


def bolt_subtotal(order: dict[str, Any]) -> Decimal:
    return sum((Decimal(li["total"]) for li in order["line_items"]), Decimal(0))


def only(
    orders: list[dict[str, Any]], merchant: dict[str, Any], key: str = "sourceIdentifier"
) -> dict[str, Any]:
    marker = f"ordersync-{merchant['legacyResourceId']}"
    if key == "sourceIdentifier":
        [order] = [o for o in orders if o.get("sourceIdentifier") == marker]
    else:
        [order] = [o for o in orders if {m["key"]: m["value"] for m in o["meta_data"]}.get(key) == marker]
    return order


def bolt_order(world, merchant):
    return only(world.bolt_orders(), merchant, "_ordersync_marker")


def acme_order(world, merchant):
    return only(world.acme_orders(), merchant)


def add_clamp(world):
    """A third vendor: another Shopify store."""
    clamp = world.sandbox.add_shopify("clamp", token="shpat_test_clamp_SECRET")
    clamp.add_product("Bar clamp", sku="CLAMP-BAR", price="10.00")
    name, value = world.sandbox.connection_env(clamp, "ordersync_vendor_clamp")
    world.monkeypatch.setenv(name, value)
    world.set_vendors(
        [
            *world.vendors,
            {
                "vendor": CLAMP,
                "platform": "shopify",
                "conn_id": "ordersync_vendor_clamp",
                "location_id": None,
                "enabled": True,
            },
        ]
    )
    return clamp


SHIPPING = [
    {"title": "Standard", "code": "STANDARD", "source": "shopify", "price": "9.99"},
    {"title": "Insurance", "code": "INSURE", "source": "shopify", "price": "1.00"},
]


def test_proportional_shipping_over_three_vendors_adds_up_to_the_cent_across_runs(world):
    """Goods 24.00 + 19.00 + 10.00 (Acme, Bolt, Clamp); shipping 9.99 + 1.00. Each vendor order carries both
    methods (title, code, source), its share of each price by its share of the goods, and the shares add up
    to the merchant's shipping exactly, although the shares were created by different runs."""
    clamp = add_clamp(world)
    merchant = world.order(
        [
            (ACME, "ACME-HAMMER", 1, "24.00"),
            (BOLT, "BOLT-M6-100", 2, "9.50"),
            (CLAMP, "CLAMP-BAR", 1, "10.00"),
        ],
        shippingLines=SHIPPING,
    )
    first = world.run(vendors=[BOLT])  # one vendor today ...
    assert first.outcome(merchant["name"], BOLT) == "pushed", first.lines
    second = world.run()  # ... the others tomorrow
    assert second.outcome(merchant["name"], ACME) == "pushed", second.lines
    assert second.outcome(merchant["name"], CLAMP) == "pushed", second.lines

    acme = acme_order(world, merchant)
    [clamp_order] = clamp.orders
    bolt = bolt_order(world, merchant)
    # 9.99 x 24/53 = 4.523 -> 4.52 (+0.01 remainder: the largest share), x 19/53 = 3.58, x 10/53 = 1.88
    assert acme_shipping(acme) == [
        ("Standard", "STANDARD", "shopify", Decimal("4.53")),
        ("Insurance", "INSURE", "shopify", Decimal("0.45")),
    ]
    assert acme_shipping(clamp_order) == [
        ("Standard", "STANDARD", "shopify", Decimal("1.88")),
        ("Insurance", "INSURE", "shopify", Decimal("0.19")),
    ]
    assert bolt_shipping(bolt) == [
        ("Standard", "STANDARD", Decimal("3.58")),
        ("Insurance", "INSURE", Decimal("0.36")),
    ]
    assert {m["key"]: m["value"] for m in bolt["shipping_lines"][0]["meta_data"]}[
        "shopify_source"
    ] == "shopify"
    for n, merchant_line in enumerate(world.merchant.get_order(merchant["id"])["shippingLines"]):
        shares = [
            amount(acme["shippingLines"][n]["discountedPriceSet"]),
            amount(clamp_order["shippingLines"][n]["discountedPriceSet"]),
            Decimal(bolt["shipping_lines"][n]["total"]),
        ]
        assert sum(shares) == amount(merchant_line["discountedPriceSet"])
    assert Decimal(bolt["shipping_total"]) == Decimal("3.94")
    assert Decimal(bolt["total"]) == Decimal("19.00") + Decimal("3.94")


def test_full_and_method_only_and_free_shipping(world):
    """``full`` puts the whole price on each vendor order, ``method_only`` (here per vendor) the method at 0;
    free shipping (discounted to 0) travels as a method at 0."""
    world.set_vendors(
        [world.vendors[0], {**world.vendors[1], "settings": {"vendor_shipping": "method_only"}}]
    )
    world.settings(vendor_shipping="full")
    paid = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")],
        shippingLines=[{"title": "Express", "code": "EXPRESS", "source": "shopify", "price": "12.00"}],
    )
    free = world.order(
        [(ACME, "ACME-WRENCH-S", 1, "18.00"), (BOLT, "BOLT-M6-100", 1, "9.50")],
        shippingLines=[
            {
                "title": "Free shipping",
                "code": "FREE",
                "source": "shopify",
                "price": "6.00",
                "discount": "6.00",
            }
        ],
    )
    result = world.run()
    for order in (paid, free):
        assert result.outcome(order["name"], ACME) == "pushed", result.lines
        assert result.outcome(order["name"], BOLT) == "pushed", result.lines
    assert acme_shipping(acme_order(world, paid)) == [("Express", "EXPRESS", "shopify", Decimal("12.00"))]
    assert bolt_shipping(bolt_order(world, paid)) == [("Express", "EXPRESS", Decimal("0.00"))]
    assert acme_shipping(acme_order(world, free)) == [("Free shipping", "FREE", "shopify", Decimal("0.00"))]
    assert bolt_shipping(bolt_order(world, free)) == [("Free shipping", "FREE", Decimal("0.00"))]


def test_vendor_lines_are_priced_after_line_and_order_level_discounts(world):
    """Hammer 2 x 24.00 with an automatic 10 % on the hammer; the code SAVE10 (10 % off the order) and the
    code FIVEOFF (5.00 off the order, split across the lines); bolts 3 x 9.50. Each vendor's subtotal is what
    the buyer paid for its goods, to the cent; Shopify gets a unit price that does not divide as two price
    points of the same variant; the codes travel in the vendor orders."""
    merchant = world.order(
        [(ACME, "ACME-HAMMER", 2, "24.00"), (BOLT, "BOLT-M6-100", 3, "9.50")],
        discounts=[
            {
                "title": "Hammer deal",
                "automatic": True,
                "type": "percentage",
                "value": 10,
                "lines": ["ACME-HAMMER"],
            },
            {"code": "SAVE10", "type": "percentage", "value": 10},
            {"code": "FIVEOFF", "type": "fixed", "value": "5.00"},
        ],
        shippingLines=[{"title": "Standard", "code": "STANDARD", "source": "shopify", "price": "5.00"}],
    )
    stored = world.merchant.get_order(merchant["id"])
    paid = {
        li["sku"]: amount(li["originalUnitPriceSet"]) * li["quantity"]
        - sum((amount(a["allocatedAmountSet"]) for a in li["discountAllocations"]), Decimal(0))
        for li in stored["lineItems"]
    }
    # 48.00 - 4.80 - 4.32 - 3.01 and 28.50 - 2.85 - 1.99 (the merchant store's allocations)
    assert paid == {"ACME-HAMMER": Decimal("35.87"), "BOLT-M6-100": Decimal("23.66")}
    assert amount(stored["totalDiscountsSet"]) == Decimal("76.50") - Decimal("59.53")
    result = world.run()
    assert result.outcome(merchant["name"], ACME) == "pushed", result.lines
    assert result.outcome(merchant["name"], BOLT) == "pushed", result.lines

    acme = acme_order(world, merchant)
    hammer = world.acme_variants["ACME-HAMMER"]
    assert sorted(
        (li["variant"]["id"], li["quantity"], amount(li["originalUnitPriceSet"])) for li in acme["lineItems"]
    ) == [
        (hammer, 1, Decimal("17.93")),
        (hammer, 1, Decimal("17.94")),
    ]
    assert acme_subtotal(acme) == amount(acme["subtotalPriceSet"]) == Decimal("35.87")
    split = {p["name"]: p["value"] for p in acme["_input"]["lineItems"][0]["properties"]}
    assert split["_ordersync_price_split"] == "35.87 for 2 = 1 x 17.93 + 1 x 17.94"
    attributes = {a["key"]: a["value"] for a in acme["customAttributes"]}
    assert attributes["ordersync_discount_codes"] == "SAVE10, FIVEOFF"

    bolt = bolt_order(world, merchant)
    [line] = bolt["line_items"]
    assert (line["quantity"], line["subtotal"], line["total"]) == (3, "23.66", "23.66")
    assert bolt_subtotal(bolt) == Decimal("23.66")
    assert {m["key"]: m["value"] for m in bolt["meta_data"]}["ordersync_discount_codes"] == "SAVE10, FIVEOFF"
    # proportional shipping by what was paid for goods: 5.00 x 35.87 / 59.53 = 3.01, the rest 1.99
    assert acme_shipping(acme)[0][3] + bolt_shipping(bolt)[0][2] == Decimal("5.00")
    assert acme_shipping(acme)[0][3] == Decimal("3.01")


def test_shopify_vendor_lines_carry_the_merchant_tax_lines(world, monkeypatch):
    """Tax lines of each line (title, rate, price) and of the shipping (the vendor's share), and
    ``taxesIncluded``, reach the Shopify vendor; WooCommerce gets no tax lines (it computes its own). Read
    with a bulk operation (threshold 0), so the bulk read carries the same fields as the paged one."""
    monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "0")
    vat = [{"title": "VAT", "rate": "0.2", "price": "8.00"}]
    merchant = world.order(
        [],
        lineItems=[
            {
                "title": "Hammer",
                "sku": "ACME-HAMMER",
                "vendor": ACME,
                "quantity": 2,
                "price": "24.00",
                "taxLines": vat,
            },
            {
                "title": "Bolts",
                "sku": "BOLT-M6-100",
                "vendor": BOLT,
                "quantity": 1,
                "price": "9.50",
                "taxLines": [{"title": "VAT", "rate": "0.2", "price": "1.58"}],
            },
        ],
        taxesIncluded=True,
        shippingLines=[
            {
                "title": "Standard",
                "code": "STANDARD",
                "source": "shopify",
                "price": "6.00",
                "taxLines": [{"title": "VAT", "rate": "0.2", "price": "1.00"}],
            }
        ],
    )
    stored = world.merchant.get_order(merchant["id"])
    assert amount(stored["totalTaxSet"]) == Decimal("10.58") and stored["taxesIncluded"] is True
    result = world.run()
    assert result.outcome(merchant["name"], ACME) == "pushed", result.lines
    assert any("bulk operation COMPLETED" in line for line in result.lines), result.lines

    acme = acme_order(world, merchant)
    assert acme["taxesIncluded"] is True
    [line] = acme["lineItems"]
    assert [(t["title"], t["rate"], amount(t["priceSet"])) for t in line["taxLines"]] == [
        ("VAT", 0.2, Decimal("8.00"))
    ]
    # the shipping's tax split like its price: 48.00 / 57.50 of 6.00 = 5.01, of 1.00 = 0.83
    [shipping] = acme["shippingLines"]
    assert amount(shipping["discountedPriceSet"]) == Decimal("5.01")
    assert [(t["title"], amount(t["priceSet"])) for t in shipping["taxLines"]] == [("VAT", Decimal("0.83"))]
    assert amount(acme["totalTaxSet"]) == Decimal("8.83")

    bolt = bolt_order(world, merchant)
    assert "tax_lines" not in bolt["shipping_lines"][0] or not bolt["shipping_lines"][0]["tax_lines"]
    assert bolt_shipping(bolt) == [("Standard", "STANDARD", Decimal("0.99"))]


def test_a_shipping_change_after_the_push_is_flagged_manual_not_synced(world):
    merchant = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")],
        shippingLines=[{"title": "Standard", "code": "STANDARD", "source": "shopify", "price": "5.00"}],
    )
    assert world.run().outcome(merchant["name"], ACME) == "pushed"
    again = world.run()
    assert again.outcome(merchant["name"], ACME) == "unchanged", again.lines
    writes = len(world.vendor_writes())

    world.merchant.update_order(
        merchant["id"],
        shippingLines=[{"title": "Express", "code": "EXPRESS", "source": "shopify", "price": "15.00"}],
    )
    changed = world.run()
    for vendor in (ACME, BOLT):
        assert changed.outcome(merchant["name"], vendor) == "manual", changed.lines
        assert "shipping Express (EXPRESS) 15.00" in changed.decisions(merchant["name"], vendor)[-1]
    assert len(world.vendor_writes()) == writes  # not synced
    assert acme_shipping(acme_order(world, merchant))[0][0] == "Standard"
