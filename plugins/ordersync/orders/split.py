"""Split a merchant order into one share per vendor and build the vendor order drafts."""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

from ordersync import rules
from ordersync.models import (
    LineItem,
    Mapping,
    MerchantOrder,
    ShippingLine,
    TaxLine,
    VendorLine,
    VendorOrderDraft,
    cents,
    split_amount,
)
from ordersync.settings import Settings, VendorConfig

LINK_TAG = "ordersync"
ZERO = Decimal("0")


class VendorShare(list):
    """One vendor's lines (a plain list of :class:`LineItem`) that also knows the order's shipping lines:
    ``lifecycle.line_fingerprint`` folds them in, so a change of shipping method or price after the push
    is flagged like a line-item edit."""

    shipping: tuple[ShippingLine, ...] = ()


def split_by_vendor(order: MerchantOrder) -> OrderedDict[str, list[LineItem]]:
    """Lines grouped by the line item's ``vendor``, in order of first appearance.

    Lines whose current quantity is 0 (removed at the merchant) are left out;
    lines without a vendor are grouped under ``""``.
    """
    shares: OrderedDict[str, list[LineItem]] = OrderedDict()
    for line in order.line_items:
        if line.quantity <= 0:
            continue
        if (line.vendor or "") not in shares:
            share = VendorShare()
            share.shipping = order.shipping_lines
            shares[line.vendor or ""] = share
        shares[line.vendor or ""].append(line)
    return shares


def unrefunded(order: MerchantOrder) -> MerchantOrder:
    """The order as if nothing had been refunded: each line's current quantity plus what refunds took. What
    a vendor order was pushed from is compared with this, so a refund (mirrored on its own) is not mistaken
    for a line-item edit."""
    if not order.refunds:
        return order
    return order.model_copy(
        update={
            "line_items": tuple(
                line.model_copy(update={"quantity": line.quantity + order.refunded_quantity(line.id)})
                for line in order.line_items
            )
        }
    )


def vendor_values(order: MerchantOrder) -> dict[str, Decimal]:
    """What the buyer paid for goods, per vendor of the order (every vendor, pushed or not; ``""`` for
    lines without one), before any refund: the weights of the proportional shipping split (and of a
    shipping refund's), the same whenever a share is created."""
    return {
        vendor: sum((line.paid_total for line in lines), ZERO)
        for vendor, lines in split_by_vendor(unrefunded(order)).items()
    }


def vendor_shipping(order: MerchantOrder, vendor: str, mode: str) -> tuple[ShippingLine, ...]:
    """The order's shipping lines as ``vendor``'s order carries them: every method (title, code, source),
    priced by ``mode`` (the ``vendor_shipping`` setting). ``proportional``: each line's price (and each of
    its tax lines) split over all the order's vendors by their share of the goods' value
    (:func:`split_amount`): computed from the whole order, so shares created on different days still add
    up to the merchant's shipping. ``full``: the whole price on each vendor order. ``method_only``: 0."""
    values = vendor_values(order)
    out = []
    for line in order.shipping_lines:
        taxes: tuple[TaxLine, ...]
        if mode == "method_only":
            price, taxes = ZERO, ()
        elif mode == "full" or vendor not in values:
            price, taxes = line.price, line.tax_lines
        else:
            price = split_amount(line.price, dict(values))[vendor]
            taxes = tuple(
                t.model_copy(update={"price": split_amount(t.price, dict(values))[vendor]})
                for t in line.tax_lines
            )
        out.append(
            ShippingLine(title=line.title, code=line.code, source=line.source, price=price, tax_lines=taxes)
        )
    return tuple(out)


def vendor_line(line: LineItem, mapping: Mapping | None) -> VendorLine:
    """A merchant line at what the buyer paid for it: ``total`` exact, ``unit_price`` rounded to the cent
    (a total that does not divide by the quantity is split into two price points by the Shopify payload;
    WooCommerce takes the line total as it is)."""
    total = line.paid_total
    return VendorLine(
        merchant_line_id=line.id,
        title=line.title,
        variant_title=line.variant_title,
        sku=line.sku,
        quantity=line.quantity,
        unit_price=cents(total / line.quantity) if line.quantity else line.unit_price,
        total=total,
        tax_lines=line.current_tax_lines,
        mapping=mapping,
    )


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
    vendor_lines = tuple(vendor_line(line, mappings.get(line.sku) if line.sku else None) for line in lines)
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
        shipping_lines=vendor_shipping(order, vendor.vendor, settings.vendor_shipping),
        taxes_included=order.taxes_included,
        discount_codes=order.discount_codes,
    )
