"""Fingerprints and the fields each platform keeps in sync."""

from __future__ import annotations

import json

from ordersync import lifecycle
from ordersync.models import Address
from tests.unit.test_rules_and_split import CONTACT, line, order, settings


def test_synced_fields_come_from_the_capabilities_file():
    fields = lifecycle.order_fields(order(), settings())
    assert set(lifecycle.synced_fields("shopify", fields)) == {
        "email",
        "phone",
        "note",
        "tags",
        "shipping_address",
        "custom_attributes",
    }
    assert "tags" not in lifecycle.synced_fields("woocommerce", fields)
    assert "billing_address" in lifecycle.synced_fields("woocommerce", fields)


def test_any_synced_edit_changes_the_fingerprint():
    base = order()
    s = settings()
    before = lifecycle.sync_record("shopify", base, s, list(base.line_items))
    for edit in (
        {"note": "other"},
        {"email": "x@y.example"},
        {"tags": ("a",)},
        {"shipping_address": Address(first_name="Jane", last_name="Buyer", address1="2 Main")},
    ):
        after = lifecycle.sync_record("shopify", base.model_copy(update=edit), s, [])
        assert after["fingerprint"] != before["fingerprint"], edit
        assert lifecycle.changed_fields(before["synced_fields"], json.loads(after["synced_fields"])) == [
            {"note": "note", "email": "email", "tags": "tags", "shipping_address": "shipping_address"}[
                next(iter(edit))
            ]
        ]


def test_with_the_override_buyer_contact_edits_do_not_count():
    s = settings(override_customer_data=True, merchant_contact=CONTACT)
    base = order()
    edited = base.model_copy(update={"email": "new@buyer.example", "phone": "+1999"})
    assert (
        lifecycle.sync_record("shopify", base, s, [])["fingerprint"]
        == lifecycle.sync_record("shopify", edited, s, [])["fingerprint"]
    )
    moved = base.model_copy(
        update={"shipping_address": base.shipping_address.model_copy(update={"city": "Y"})}
    )
    assert (
        lifecycle.sync_record("woocommerce", base, s, [])["fingerprint"]
        != lifecycle.sync_record("woocommerce", moved, s, [])["fingerprint"]
    )


def test_line_fingerprint_sees_quantity_swap_add_remove():
    a, b = line("Acme", "A", 1, n=1), line("Acme", "B", 1, n=2)
    base = lifecycle.line_fingerprint([a, b])
    assert lifecycle.line_fingerprint([b, a]) == base
    assert lifecycle.line_fingerprint([a]) != base
    assert lifecycle.line_fingerprint([a, line("Acme", "B", 2, n=2)]) != base
    assert lifecycle.line_fingerprint([a, line("Acme", "C", 1, n=2)]) != base


def test_cancel_reason_maps_to_shopify_values():
    assert lifecycle.cancel_reason(order(cancel_reason="FRAUD")) == "FRAUD"
    assert lifecycle.cancel_reason(order(cancel_reason="something-else")) == "OTHER"
    assert lifecycle.cancel_reason(order()) == "OTHER"
