"""The pure rules, the split and the platform payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from ordersync import rules
from ordersync.models import Address, Contact, LineItem, Mapping, MerchantOrder
from ordersync.orders.split import build_draft, split_by_vendor
from ordersync.platforms.shopify.payloads import build_order_input
from ordersync.platforms.woocommerce.payloads import build_order_payload
from ordersync.settings import VendorConfig, parse_settings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CONTACT = {"name": "Market Ops", "email": "ops@market.example", "phone": "+15559990000"}


def settings(**values):
    return parse_settings(json.dumps(values))


def line(vendor, sku, qty=1, price="10.00", n=1):
    return LineItem(
        id=f"gid://shopify/LineItem/{n}",
        title=f"{sku} title",
        sku=sku,
        vendor=vendor,
        quantity=qty,
        unit_price=Decimal(price),
        currency="USD",
    )


def order(status="PAID", lines=(), **extra):
    address = Address(
        first_name="Jane",
        last_name="Buyer",
        address1="1 Main",
        city="X",
        country_code="US",
        phone="+1555000222",
    )
    base = dict(
        id="gid://shopify/Order/7",
        legacy_id="7",
        name="#1007",
        created_at=T0,
        updated_at=T0,
        financial_status=status,
        email="jane@buyer.example",
        phone="+1555000111",
        note="leave at door",
        tags=("vip",),
        currency="USD",
        customer=Contact(
            first_name="Jane", last_name="Buyer", email="jane@buyer.example", phone="+1555000111"
        ),
        shipping_address=address,
        billing_address=address,
        line_items=tuple(lines),
    )
    base.update(extra)
    return MerchantOrder(**base)


VENDORS = {
    v.vendor: v
    for v in [
        VendorConfig(vendor="Acme", platform="shopify", conn_id="a", location_id="gid://shopify/Location/9"),
        VendorConfig(vendor="Bolt", platform="woocommerce", conn_id="b"),
        VendorConfig(vendor="Off", platform="shopify", conn_id="o", enabled=False),
    ]
}


def test_master_switch():
    assert rules.master_switch(settings()).allow
    off = rules.master_switch(settings(order_sync_enabled=False))
    assert not off.allow and off.outcome == "skipped" and "order_sync_enabled=false" in off.reason


def test_paid_rule_holds_unpaid_until_paid():
    held = rules.push_only_if_paid(settings(), order("PENDING"))
    assert (held.allow, held.outcome, held.hold_kind) == (False, "held", "unpaid")
    assert "PENDING" in held.reason
    assert rules.push_only_if_paid(settings(), order("PAID")).allow
    assert rules.push_only_if_paid(settings(push_only_if_paid=False), order("PENDING")).allow


def test_status_filter():
    assert rules.order_status_filter(settings(), order("VOIDED")).allow
    s = settings(order_status_filter=["PAID", "PARTIALLY_PAID"])
    assert rules.order_status_filter(s, order("PARTIALLY_PAID")).allow
    blocked = rules.order_status_filter(s, order("REFUNDED"))
    assert not blocked.allow and blocked.outcome == "skipped" and "REFUNDED" in blocked.reason


def test_cancelled_orders_are_not_pushed():
    assert not rules.not_cancelled(order(cancelled_at=T0)).allow
    assert rules.first_block(rules.order_rules(settings(), order(cancelled_at=T0))).rule == "cancelled"


def test_vendor_rule():
    s = settings(order_push_platforms=["shopify"])
    assert rules.vendor_eligible(s, "Acme", VENDORS).allow
    assert "not in ordersync_vendors" in rules.vendor_eligible(s, "Zed", VENDORS).reason
    assert "disabled" in rules.vendor_eligible(s, "Off", VENDORS).reason
    assert "woocommerce is not active" in rules.vendor_eligible(s, "Bolt", VENDORS).reason
    assert "no vendor" in rules.vendor_eligible(s, None, VENDORS).reason


def test_unmapped_rule_both_ways():
    lines = [line("Acme", "A-1"), line("Acme", "A-2", n=2), line("Acme", None, n=3)]
    mappings = {"A-1": Mapping(sku="A-1", product_id="p1", variant_id="v1")}
    held = rules.unmapped_products(settings(), lines, mappings)
    assert not held.allow and held.hold_kind == "unmapped"
    assert "A-2" in held.reason and "SKU missing" in held.reason and "'A-1 title'" not in held.reason
    assert rules.unmapped_products(settings(push_unmapped_products=True), lines, mappings).allow
    assert rules.unmapped_products(settings(), lines[:1], mappings).allow


def test_split_groups_by_vendor_and_drops_removed_lines():
    o = order(
        lines=[
            line("Acme", "A", n=1),
            line("Bolt", "B", n=2),
            line("Acme", "C", n=3),
            line("Acme", "D", qty=0, n=4),
            line(None, "E", n=5),
        ]
    )
    shares = split_by_vendor(o)
    assert list(shares) == ["Acme", "Bolt", ""]
    assert [l.sku for l in shares["Acme"]] == ["A", "C"]


def test_override_on_keeps_the_buyer_out_of_both_payloads():
    s = settings(override_customer_data=True, merchant_contact=CONTACT, locations_addon=True)
    o = order(lines=[line("Acme", "A", 2, "5.00"), line("Bolt", "B", 1, "3.50", n=2)])
    for vendor, builder in (("Acme", build_order_input), ("Bolt", build_order_payload)):
        mappings = {
            "A": Mapping(
                sku="A", product_id="gid://shopify/Product/1", variant_id="gid://shopify/ProductVariant/2"
            ),
            "B": Mapping(sku="B", product_id="55"),
        }
        draft = build_draft(o, VENDORS[vendor], split_by_vendor(o)[vendor], mappings, s, vendor == "Acme")
        payload = json.dumps(builder(draft))
        assert (
            "jane@buyer.example" not in payload
            and "+1555000111" not in payload
            and "+1555000222" not in payload
        )
        assert payload.count("Buyer") == 1  # only the shipping recipient's last name
        assert CONTACT["email"] in payload and CONTACT["phone"] in payload
    acme = build_draft(o, VENDORS["Acme"], split_by_vendor(o)["Acme"], mappings, s, True)
    assert acme.location_id == "gid://shopify/Location/9"
    bolt = build_draft(o, VENDORS["Bolt"], split_by_vendor(o)["Bolt"], mappings, s, False)
    assert bolt.location_id is None


def test_shopify_order_input():
    o = order(
        lines=[line("Acme", "A", 2, "5.00"), line("Acme", "X", 1, "7.25", n=2)], financial_status="PAID"
    )
    mappings = {
        "A": Mapping(
            sku="A", product_id="gid://shopify/Product/1", variant_id="gid://shopify/ProductVariant/2"
        )
    }
    draft = build_draft(o, VENDORS["Acme"], split_by_vendor(o)["Acme"], mappings, settings(), True)
    body = build_order_input(draft)
    assert body["lineItems"][0] == {
        "variantId": "gid://shopify/ProductVariant/2",
        "quantity": 2,
        "priceSet": {"shopMoney": {"amount": "5.00", "currencyCode": "USD"}},
    }
    assert body["lineItems"][1]["title"] == "X title" and body["lineItems"][1]["sku"] == "X"
    assert body["financialStatus"] == "PAID" and body["sourceIdentifier"] == "ordersync-7"
    assert "merchant-order-1007" in body["tags"] and "vip" in body["tags"]
    assert body["customer"] == {
        "toUpsert": {
            "firstName": "Jane",
            "lastName": "Buyer",
            "email": "jane@buyer.example",
            "phone": "+1555000111",
        }
    }
    assert body["shippingAddress"]["countryCode"] == "US"
    assert body["buyerAcceptsMarketing"] is False  # the buyer's preference travels at creation
    override = settings(override_customer_data=True, merchant_contact=CONTACT)
    merchant_draft = build_draft(o, VENDORS["Acme"], split_by_vendor(o)["Acme"], mappings, override, True)
    assert "buyerAcceptsMarketing" not in build_order_input(merchant_draft)  # not the buyer's to share then


def test_woocommerce_payload():
    o = order("PENDING", lines=[line("Bolt", "B", 3, "2.10")])
    draft = build_draft(
        o,
        VENDORS["Bolt"],
        split_by_vendor(o)["Bolt"],
        {"B": Mapping(sku="B", product_id="10", variant_id="11")},
        settings(push_only_if_paid=False),
        False,
    )
    body = build_order_payload(draft)
    assert body["set_paid"] is False
    assert body["line_items"] == [
        {"quantity": 3, "subtotal": "6.30", "total": "6.30", "product_id": 10, "variation_id": 11}
    ]
    assert {"key": "_ordersync_marker", "value": "ordersync-7"} in body["meta_data"]
    assert body["billing"]["email"] == "jane@buyer.example" and body["customer_note"] == "leave at door"
