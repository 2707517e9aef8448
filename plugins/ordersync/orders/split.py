"""Split a merchant order into one share per vendor and build the vendor order drafts."""

from __future__ import annotations

from collections import OrderedDict

from ordersync import rules
from ordersync.models import LineItem, Mapping, MerchantOrder, VendorLine, VendorOrderDraft
from ordersync.settings import Settings, VendorConfig

LINK_TAG = "ordersync"


def split_by_vendor(order: MerchantOrder) -> OrderedDict[str, list[LineItem]]:
    """Lines grouped by the line item's ``vendor``, in order of first appearance.

    Lines whose current quantity is 0 (removed at the merchant) are left out;
    lines without a vendor are grouped under ``""``.
    """
    shares: OrderedDict[str, list[LineItem]] = OrderedDict()
    for line in order.line_items:
        if line.quantity <= 0:
            continue
        shares.setdefault(line.vendor or "", []).append(line)
    return shares


def marker_for(order: MerchantOrder) -> str:
    """The link-back marker: unique per merchant order within one vendor store."""
    return f"ordersync-{order.legacy_id}"


def link_tags(order: MerchantOrder) -> tuple[str, ...]:
    return (LINK_TAG, f"merchant-order-{order.name.lstrip('#')}")


def build_draft(
    order: MerchantOrder,
    vendor: VendorConfig,
    lines: list[LineItem],
    mappings: dict[str, Mapping],
    settings: Settings,
    platform_has_locations: bool,
) -> VendorOrderDraft:
    customer = rules.customer_override(settings, order)
    location_id, _ = rules.location(settings, vendor, platform_has_locations)
    vendor_lines = tuple(
        VendorLine(
            merchant_line_id=line.id,
            title=line.title,
            variant_title=line.variant_title,
            sku=line.sku,
            quantity=line.quantity,
            unit_price=line.unit_price,
            mapping=mappings.get(line.sku) if line.sku else None,
        )
        for line in lines
    )
    tags = tuple(dict.fromkeys((*order.tags, *link_tags(order))))
    return VendorOrderDraft(
        merchant_order_id=order.id,
        merchant_order_name=order.name,
        merchant_legacy_id=order.legacy_id,
        vendor=vendor.vendor,
        marker=marker_for(order),
        currency=order.currency,
        paid=order.financial_status == "PAID",
        financial_status=order.financial_status,
        lines=vendor_lines,
        contact=customer.contact,
        billing_address=customer.billing_address,
        shipping_address=customer.shipping_address,
        email=customer.email,
        phone=customer.phone,
        note=order.note,
        tags=tags,
        custom_attributes=order.custom_attributes,
        location_id=location_id,
        accepts_marketing=None if settings.override_customer_data else order.accepts_marketing,
    )
