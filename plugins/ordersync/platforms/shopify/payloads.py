"""What ordersync sends to a Shopify vendor: ``orderCreate`` and ``orderUpdate`` inputs (pure; unit-tested)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from ordersync.models import CENT, Address, TaxLine, VendorLine, VendorOrderDraft, split_amount

DISCOUNT_CODES_KEY = "ordersync_discount_codes"  # the merchant order's discount codes (prices are after them)

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


def tax_lines_input(taxes: tuple[TaxLine, ...], currency: str) -> list[dict[str, Any]]:
    """``OrderCreateTaxLineInput`` for each tax line (title, rate, price)."""
    return [
        {
            "title": t.title,
            "rate": str(t.rate if t.rate is not None else 0),
            "priceSet": _money(t.price, currency),
        }
        for t in taxes
    ]


def price_points(line: VendorLine) -> list[tuple[int, Decimal, tuple[TaxLine, ...]]]:
    """(quantity, unit price, tax lines) parts of one line. Shopify takes a unit price only, so a line
    whose exact total does not divide by its quantity to the cent (10.00 for 3) is sent as two lines of
    the same item: ``q - r`` units at the lower cent and ``r`` units one cent dearer (2 x 3.33 + 1 x 3.34),
    the total exact; the tax lines split by quantity the same way, to the cent."""
    total, qty = line.line_total, line.quantity
    if qty <= 0:
        return [(qty, line.unit_price, line.tax_lines)]
    low = (total / qty).quantize(CENT, rounding=ROUND_FLOOR)
    dearer = int(((total - low * qty) / CENT).to_integral_value())
    if dearer == 0:
        return [(qty, low, line.tax_lines)]
    parts = {"low": Decimal(qty - dearer), "high": Decimal(dearer)}
    shares = [split_amount(t.price, dict(parts)) for t in line.tax_lines]
    return [
        (
            qty - dearer,
            low,
            tuple(
                t.model_copy(update={"price": s["low"]}) for t, s in zip(line.tax_lines, shares, strict=True)
            ),
        ),
        (
            dearer,
            low + CENT,
            tuple(
                t.model_copy(update={"price": s["high"]}) for t, s in zip(line.tax_lines, shares, strict=True)
            ),
        ),
    ]


def line_inputs(line: VendorLine, currency: str) -> list[dict[str, Any]]:
    """``OrderCreateLineItemInput`` for one vendor line: one, or two when its price is split
    (:func:`price_points`; each part then carries the property ``_ordersync_price_split`` saying so)."""
    parts = price_points(line)
    out = []
    for quantity, unit, taxes in parts:
        price = _money(unit, currency)
        if line.mapping and line.mapping.variant_id:
            item: dict[str, Any] = {
                "variantId": line.mapping.variant_id,
                "quantity": quantity,
                "priceSet": price,
            }
        else:
            item = {"title": line.title, "quantity": quantity, "priceSet": price, "requiresShipping": True}
            if line.variant_title:
                item["variantTitle"] = line.variant_title
            if line.sku:
                item["sku"] = line.sku
        if taxes:
            item["taxLines"] = tax_lines_input(taxes, currency)
        if len(parts) > 1:
            split = " + ".join(f"{q} x {u}" for q, u, _ in parts)
            item["properties"] = [
                {
                    "name": "_ordersync_price_split",
                    "value": f"{line.line_total} for {line.quantity} = {split}",
                }
            ]
        out.append(item)
    return out


def shipping_lines_input(draft: VendorOrderDraft) -> list[dict[str, Any]]:
    """``OrderCreateShippingLineInput`` for each of the buyer's shipping methods, at this vendor's price."""
    out = []
    for s in draft.shipping_lines:
        item: dict[str, Any] = {"title": s.title, "priceSet": _money(s.price, draft.currency)}
        if s.code:
            item["code"] = s.code
        if s.source:
            item["source"] = s.source
        if s.tax_lines:
            item["taxLines"] = tax_lines_input(s.tax_lines, draft.currency)
        out.append(item)
    return out


def build_order_input(draft: VendorOrderDraft) -> dict[str, Any]:
    """``OrderCreateOrderInput`` for one vendor's share (pure; unit-tested)."""
    lines = [item for line in draft.lines for item in line_inputs(line, draft.currency)]
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
        + [{"key": "ordersync_merchant_order", "value": draft.merchant_order_name}]
        + (
            [{"key": DISCOUNT_CODES_KEY, "value": ", ".join(draft.discount_codes)}]
            if draft.discount_codes
            else []
        ),
        "taxesIncluded": draft.taxes_included,
    }
    if draft.shipping_lines:
        order["shippingLines"] = shipping_lines_input(draft)
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
