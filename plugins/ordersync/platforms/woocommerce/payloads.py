"""What ordersync sends to a WooCommerce vendor: the order create and update bodies (pure; unit-tested)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ordersync.models import Address, VendorOrderDraft

MARKER_KEY = "_ordersync_marker"
MERCHANT_ORDER_KEY = "_ordersync_merchant_order"
MERCHANT_ORDER_ID_KEY = "_ordersync_merchant_order_id"
DISCOUNT_CODES_KEY = "ordersync_discount_codes"  # the merchant order's discount codes (prices are after them)


def _address(address: Address | None, email: str | None = None) -> dict[str, Any]:
    if address is None:
        out: dict[str, Any] = {}
    else:
        out = {
            "first_name": address.first_name,
            "last_name": address.last_name,
            "company": address.company,
            "address_1": address.address1,
            "address_2": address.address2,
            "city": address.city,
            "state": address.province_code,
            "postcode": address.zip,
            "country": address.country_code,
            "phone": address.phone,
        }
    if email:
        out["email"] = email
    return {k: v for k, v in out.items() if v not in (None, "")}


def _total(price: Decimal, quantity: int) -> str:
    return str((price * quantity).quantize(Decimal("0.01")))


def shipping_lines(draft: VendorOrderDraft) -> list[dict[str, Any]]:
    """The buyer's shipping methods at this vendor's price (``method_id``: the Shopify rate's code, else its
    title; code and source also as line meta). Taxes are not sent: the vendor store computes its own."""
    out = []
    for s in draft.shipping_lines:
        meta = [
            {"key": k, "value": v} for k, v in (("shopify_code", s.code), ("shopify_source", s.source)) if v
        ]
        out.append(
            {
                "method_id": s.code or s.title,
                "method_title": s.title,
                "total": str(s.price.quantize(Decimal("0.01"))),
                **({"meta_data": meta} if meta else {}),
            }
        )
    return out


def build_order_payload(draft: VendorOrderDraft) -> dict[str, Any]:
    """The ``POST /orders`` body for one vendor's share (pure; unit-tested)."""
    lines, fees = [], []
    for line in draft.lines:
        total = str(line.line_total)  # after its discounts, exact: WooCommerce keeps line totals
        if line.mapping:
            item: dict[str, Any] = {
                "product_id": int(line.mapping.product_id),
                "quantity": line.quantity,
                "subtotal": total,
                "total": total,
            }
            if line.mapping.variant_id:
                item["variation_id"] = int(line.mapping.variant_id)
            lines.append(item)
        else:
            # WooCommerce refuses a line item without a product reference
            # (woocommerce_rest_required_product_reference): an unmapped line travels as a fee line.
            title = line.title + (f" - {line.variant_title}" if line.variant_title else "")
            fees.append(
                {
                    "name": f"{title} × {line.quantity}",
                    "total": total,
                    "tax_status": "none",
                    "meta_data": [
                        {"key": "SKU", "value": line.sku or ""},
                        {"key": "quantity", "value": str(line.quantity)},
                        {"key": "unit_price", "value": str(line.unit_price)},
                    ],
                }
            )
    billing = _address(draft.billing_address, draft.contact.email)
    billing.setdefault("first_name", draft.contact.first_name)
    billing.setdefault("last_name", draft.contact.last_name)
    if draft.contact.phone:
        billing["phone"] = draft.contact.phone
    meta = [
        {"key": MARKER_KEY, "value": draft.marker},
        {"key": MERCHANT_ORDER_KEY, "value": draft.merchant_order_name},
        {"key": MERCHANT_ORDER_ID_KEY, "value": draft.merchant_order_id},
    ]
    meta += [{"key": k, "value": v} for k, v in draft.custom_attributes]
    if draft.discount_codes:
        meta.append({"key": DISCOUNT_CODES_KEY, "value": ", ".join(draft.discount_codes)})
    payload: dict[str, Any] = {
        "currency": draft.currency,
        "set_paid": draft.paid,
        "billing": {k: v for k, v in billing.items() if v},
        "shipping": _address(draft.shipping_address),
        "line_items": lines,
        "meta_data": meta,
        **({"fee_lines": fees} if fees else {}),
    }
    if draft.shipping_lines:
        payload["shipping_lines"] = shipping_lines(draft)
    if draft.note:
        payload["customer_note"] = draft.note
    return payload


def update_payload(fields: dict[str, Any]) -> dict[str, Any]:
    """``PUT /orders/{id}`` body from the synced fields (``ordersync.lifecycle.synced_fields``)."""
    out: dict[str, Any] = {}
    if "note" in fields:
        out["customer_note"] = fields["note"] or ""
    if "shipping_address" in fields:
        out["shipping"] = _address(
            Address(**fields["shipping_address"]) if fields["shipping_address"] else None
        )
    billing: dict[str, Any] = {}
    if "billing_address" in fields and fields["billing_address"]:
        billing.update(_address(Address(**fields["billing_address"])))
    if "email" in fields:
        billing["email"] = fields["email"] or ""
    if "phone" in fields and fields["phone"]:
        billing["phone"] = fields["phone"]
    if billing:
        out["billing"] = billing
    if "custom_attributes" in fields:
        out["meta_data"] = [{"key": k, "value": v} for k, v in fields["custom_attributes"]]
    return out
