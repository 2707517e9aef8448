"""SKU resolution end to end (issue 16, "The right product"): a merchant SKU maps to the vendor variant of a live
product only (ACTIVE at Shopify, published at WooCommerce); archived, draft, private and trashed duplicates are
ignored; two live products sharing the SKU hold the share as ambiguous, naming both, until the vendor fixes it.

Each duplicate is placed where the store lists it first (Shopify: lowest id; WooCommerce: newest), so taking
the first exact match would pick it."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("status", ["ARCHIVED", "DRAFT"])
def test_shopify_ignores_an_archived_or_draft_duplicate(world, status):
    old = world.acme.add_product("Old Mallet", sku="ACME-MALLET", price="30.00", status=status)
    live = world.acme.add_product("Rubber Mallet", sku="ACME-MALLET", price="30.00")
    order = world.order([(ACME, "ACME-MALLET", 1, "30.00")])
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed", "\n".join(result.lines)
    [acme] = world.acme_orders()
    assert [li["variant"]["id"] for li in acme["lineItems"]] == [live["variants"][0]["id"]]
    assert old["variants"][0]["id"] not in str(acme["lineItems"])
    cached = world.ledger().cached_mappings(ACME, ["ACME-MALLET"])["ACME-MALLET"]
    assert cached.variant_id == live["variants"][0]["id"] and cached.product_id == live["id"]


@pytest.mark.parametrize("status", ["draft", "private", "trash", "pending"])
def test_woocommerce_ignores_a_draft_private_or_trashed_duplicate(world, status):
    # WooCommerce refuses a duplicate SKU unless the first product is in the trash, or a plugin lifted the check
    world.bolt.unique_skus = status == "trash"
    if status == "trash":
        world.bolt.set_product_status(world.bolt_bolts["id"], "trash")
        dup = world.bolt.add_product("M6 bolts x100 (new)", "BOLT-M6-100", price="9.50")
        live, dead = dup, world.bolt_bolts
    else:
        dead = world.bolt.add_product("M6 bolts x100 (copy)", "BOLT-M6-100", price="9.50", status=status)
        live = world.bolt_bolts
    order = world.order([(BOLT, "BOLT-M6-100", 2, "9.50")])
    result = world.run()
    assert result.outcome(order["name"], BOLT) == "pushed", "\n".join(result.lines)
    [bolt] = world.bolt_orders()
    assert [(li["product_id"], li["quantity"]) for li in bolt["line_items"]] == [(live["id"], 2)]
    assert dead["id"] != live["id"]


@pytest.mark.parametrize("dead", ["disabled variation", "variation of a draft product"])
def test_woocommerce_ignores_a_variation_that_cannot_be_sold(world, dead):
    world.bolt.unique_skus = False
    if dead == "disabled variation":  # a variation carries its own status: private is "Enabled" unticked
        world.bolt.add_variation(world.bolt_drill["parent_id"], "BOLT-M6-100", price="9.50", status="private")
    else:
        parent = world.bolt.add_product("Bolt assortment", "BOLT-ASSORT", type="variable", status="draft")
        world.bolt.add_variation(parent["id"], "BOLT-M6-100", price="9.50")
    order = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.outcome(order["name"], BOLT) == "pushed", "\n".join(result.lines)
    [bolt] = world.bolt_orders()
    assert [(li["product_id"], li.get("variation_id") or 0) for li in bolt["line_items"]] == [
        (world.bolt_bolts["id"], 0)
    ]


def _ambiguous_then_fixed(world, vendor, sku, price, first, second, describe, archive, orders):
    """Two live products share ``sku``: the share is held as ambiguous naming both, nothing reaches the vendor,
    and the next run holds it again (nothing cached); ``archive`` one and the next scheduled run pushes."""
    order = world.order([(vendor, sku, 1, price)])
    held = world.run()
    assert held.state == "success", "\n".join(held.lines)
    assert held.outcome(order["name"], vendor) == "held", "\n".join(held.lines)
    [line] = held.decisions(order["name"], vendor)
    assert f"SKU {sku} matches 2 live products at the vendor: " in line
    assert describe(first) in line and describe(second) in line
    assert "make the SKU unique there" in line
    assert orders() == []
    pair = world.ledger().pairs([order["id"]])[(order["id"], vendor)]
    assert (pair.state, pair.hold_kind) == ("held", "ambiguous")
    assert world.ledger().cached_mappings(vendor, [sku]) == {}

    again = world.run()
    assert again.outcome(order["name"], vendor) == "held" and orders() == []

    archive(second)
    fixed = world.run()
    assert fixed.outcome(order["name"], vendor) == "pushed", "\n".join(fixed.lines)
    [pushed] = orders()
    return pushed


def test_shopify_two_active_duplicates_hold_the_share_as_ambiguous(world):
    hammer = next(p for p in world.acme.products if p["title"] == "Claw Hammer")
    copy = world.acme.add_product("Claw Hammer (2nd listing)", sku="ACME-HAMMER", price="24.00")

    def archive(product):
        product["status"] = "ARCHIVED"

    pushed = _ambiguous_then_fixed(
        world,
        ACME,
        "ACME-HAMMER",
        "24.00",
        hammer,
        copy,
        lambda p: f"{p['title']} (variant {p['variants'][0]['id']})",
        archive,
        world.acme_orders,
    )
    assert [li["variant"]["id"] for li in pushed["lineItems"]] == [hammer["variants"][0]["id"]]
    cached = world.ledger().cached_mappings(ACME, ["ACME-HAMMER"])["ACME-HAMMER"]
    assert cached.variant_id == hammer["variants"][0]["id"]


def test_woocommerce_two_published_duplicates_hold_the_share_as_ambiguous(world):
    world.bolt.unique_skus = False  # a store whose unique-SKU check a plugin lifted
    copy = world.bolt.add_product("M6 bolts x100 (2nd listing)", "BOLT-M6-100", price="9.50")

    pushed = _ambiguous_then_fixed(
        world,
        BOLT,
        "BOLT-M6-100",
        "9.50",
        world.bolt_bolts,
        copy,
        lambda p: f"{p['name']} (product {p['id']})",
        lambda p: world.bolt.set_product_status(p["id"], "trash"),
        world.bolt_orders,
    )
    assert [li["product_id"] for li in pushed["line_items"]] == [world.bolt_bolts["id"]]


def test_woocommerce_two_live_variations_are_ambiguous(world):
    world.bolt.unique_skus = False
    other = world.bolt.add_product("Drill (kit)", "BOLT-DRILL-KIT", type="variable")
    twin = world.bolt.add_variation(other["id"], "BOLT-DRILL-18V", price="129.00")
    order = world.order([(BOLT, "BOLT-DRILL-18V", 1, "129.00")])
    held = world.run()
    assert held.outcome(order["name"], BOLT) == "held", "\n".join(held.lines)
    [line] = held.decisions(order["name"], BOLT)
    drill = world.bolt_drill
    assert f"(variation {drill['id']} of product {drill['parent_id']})" in line
    assert f"(variation {twin['id']} of product {other['id']})" in line
    assert world.bolt_orders() == []
