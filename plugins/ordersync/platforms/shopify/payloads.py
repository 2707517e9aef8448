"""What ordersync sends to a Shopify vendor: ``orderCreate`` and ``orderUpdate`` inputs (pure; unit-tested)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ordersync.models import Address, VendorOrderDraft

CREATE_FINANCIAL_STATUSES = {
    "AUTHORIZED",
    "EXPIRED",
    "PAID",
    "PARTIALLY_PAID",
    "PARTIALLY_REFUNDED",
    "PENDING",
    "REFUNDED",
    "VOIDED",
}


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}


def address_input(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    fields = {
        "firstName": address.first_name,
        "lastName": address.last_name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "provinceCode": address.province_code,
        "zip": address.zip,
        "countryCode": address.country_code,
        "phone": address.phone,
    }
    return {k: v for k, v in fields.items() if v not in (None, "")}


def build_order_input(draft: VendorOrderDraft) -> dict[str, Any]:
    """``OrderCreateOrderInput`` for one vendor's share (pure; unit-tested)."""
    lines = []
    for line in draft.lines:
        price = _money(line.unit_price, draft.currency)
        if line.mapping and line.mapping.variant_id:
            lines.append({"variantId": line.mapping.variant_id, "quantity": line.quantity, "priceSet": price})
        else:
            custom = {
                "title": line.title,
                "quantity": line.quantity,
                "priceSet": price,
                "requiresShipping": True,
            }
            if line.variant_title:
                custom["variantTitle"] = line.variant_title
            if line.sku:
                custom["sku"] = line.sku
            lines.append(custom)
    contact = {
        k: v
        for k, v in {
            "firstName": draft.contact.first_name,
            "lastName": draft.contact.last_name,
            "email": draft.contact.email,
            "phone": draft.contact.phone,
        }.items()
        if v
    }
    order: dict[str, Any] = {
        "currency": draft.currency,
        "lineItems": lines,
        "financialStatus": draft.financial_status
        if draft.financial_status in CREATE_FINANCIAL_STATUSES
        else "PENDING",
        "sourceIdentifier": draft.marker,
        "sourceName": "ordersync",
        "tags": list(draft.tags),
        "customAttributes": [{"key": k, "value": v} for k, v in draft.custom_attributes]
        + [{"key": "ordersync_merchant_order", "value": draft.merchant_order_name}],
    }
    if draft.accepts_marketing is not None:
        order["buyerAcceptsMarketing"] = draft.accepts_marketing
    optional = {
        "email": draft.email,
        "phone": draft.phone,
        "note": draft.note,
        "billingAddress": address_input(draft.billing_address),
        "shippingAddress": address_input(draft.shipping_address),
        "customer": {"toUpsert": contact} if contact else None,
    }
    order.update({k: v for k, v in optional.items() if v})
    return order


def update_input(vendor_order_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``OrderInput`` from the synced fields (``ordersync.lifecycle.synced_fields``); lists are sent whole."""
    out: dict[str, Any] = {"id": vendor_order_id}
    if "email" in fields:
        out["email"] = fields["email"]
    if "phone" in fields:
        out["phone"] = fields["phone"]
    if "note" in fields:
        out["note"] = fields["note"] or ""
    if "tags" in fields:
        out["tags"] = list(fields["tags"])
    if "custom_attributes" in fields:
        out["customAttributes"] = [{"key": k, "value": v} for k, v in fields["custom_attributes"]]
    if fields.get("shipping_address"):
        out["shippingAddress"] = address_input(Address(**fields["shipping_address"]))
    return out


CREATE_OPTIONS = {
    "sendReceipt": False,
    "sendFulfillmentReceipt": False,
    "inventoryBehaviour": "DECREMENT_OBEYING_POLICY",
}
