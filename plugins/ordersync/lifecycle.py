"""After the first push: which order-level fields a vendor copy carries, and whether they changed.

Pure functions. A fingerprint of the synced order-level fields (as the vendor
should see them, i.e. after the customer override) is kept in the ledger per
(merchant order, vendor); an unchanged fingerprint costs no vendor call. Line
items have a fingerprint of their own: when it changes the share is flagged
for manual handling, never synced. The order's shipping methods and prices are
part of that fingerprint (the lines of ``split_by_vendor`` carry them): a change
of shipping method or price after the push is flagged the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ordersync import rules
from ordersync.models import LineItem, MerchantOrder, ShippingLine
from ordersync.orders.split import link_tags
from ordersync.platforms import capabilities
from ordersync.settings import Settings

CANCEL_REASONS = {"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"}


def order_fields(order: MerchantOrder, settings: Settings) -> dict[str, Any]:
    """Every order-level field ordersync keeps in sync, as the vendor should hold it."""
    customer = rules.customer_override(settings, order)
    return {
        "email": customer.email,
        "phone": customer.phone,
        "note": order.note,
        "tags": sorted(dict.fromkeys((*order.tags, *link_tags(order)))),
        "shipping_address": customer.shipping_address.model_dump() if customer.shipping_address else None,
        "billing_address": customer.billing_address.model_dump() if customer.billing_address else None,
        "custom_attributes": [list(pair) for pair in order.custom_attributes],
        "buyer_accepts_marketing": None if settings.override_customer_data else order.accepts_marketing,
    }


def synced_fields(platform: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The subset a platform accepts on an existing order (``update_fields`` in platform_capabilities.json)."""
    accepted = capabilities(platform)["update_fields"]
    return {name: fields[name] for name in accepted}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint_of(fields: dict[str, Any]) -> str:
    return _digest(fields)


def sync_record(
    platform: str, order: MerchantOrder, settings: Settings, lines: list[LineItem]
) -> dict[str, str]:
    """What the ledger keeps of a vendor order as written: field fingerprint, the fields, line fingerprint."""
    fields = synced_fields(platform, order_fields(order, settings))
    return {
        "fingerprint": fingerprint_of(fields),
        "synced_fields": json.dumps(fields, sort_keys=True, default=str),
        "line_fingerprint": line_fingerprint(lines, order),
    }


def changed_fields(before_json: str | None, after: dict[str, Any]) -> list[str]:
    """Names of the synced fields that differ from what the vendor holds."""
    before = json.loads(before_json) if before_json else {}
    return [
        name
        for name in after
        if json.dumps(before.get(name), sort_keys=True, default=str)
        != json.dumps(after[name], sort_keys=True, default=str)
    ]


def _shipping(lines: list[LineItem], order: MerchantOrder | None) -> tuple[ShippingLine, ...]:
    if order is not None:
        return order.shipping_lines
    return tuple(getattr(lines, "shipping", ()) or ())  # a VendorShare from split_by_vendor


def line_fingerprint(lines: list[LineItem], order: MerchantOrder | None = None) -> str:
    """The vendor's lines as pushed, and the order's shipping methods and prices (from ``order``, else from
    the ``VendorShare`` that ``split_by_vendor`` returns). An order without shipping lines keeps the
    fingerprint of its lines alone (what ledgers hold from before shipping was synced)."""
    items = sorted((line.id, line.sku or "", line.quantity) for line in lines)
    shipping = _shipping(lines, order)
    if not shipping:
        return _digest(items)
    return _digest({"lines": items, "shipping": [[s.title, s.code or "", str(s.price)] for s in shipping]})


def lines_unchanged(stored: str, lines: list[LineItem], order: MerchantOrder | None = None) -> bool:
    """``stored`` (the ledger's line fingerprint) still matches: the current one, or the lines-only one a
    ledger written before shipping was part of it holds (such a pair cannot tell a shipping change)."""
    items = sorted((line.id, line.sku or "", line.quantity) for line in lines)
    return stored in (line_fingerprint(lines, order), _digest(items))


def describe_shipping(shipping: tuple[ShippingLine, ...]) -> str:
    return ", ".join(f"{s.title}" + (f" ({s.code})" if s.code else "") + f" {s.price}" for s in shipping)


def describe_lines(lines: list[LineItem], order: MerchantOrder | None = None) -> str:
    text = ", ".join(f"{line.quantity} × {line.sku or line.title}" for line in lines) or "no lines"
    shipping = _shipping(lines, order)
    return f"{text}; shipping {describe_shipping(shipping)}" if shipping else text


def cancel_reason(order: MerchantOrder) -> str:
    """The merchant's cancel reason, in Shopify's ``OrderCancelReason`` (anything else is OTHER)."""
    reason = (order.cancel_reason or "OTHER").upper()
    return reason if reason in CANCEL_REASONS else "OTHER"
