"""Refunds after the push: which vendors a merchant refund touches, and what each vendor order records.

Pure functions over the merchant order as read. A refund's lines belong to the vendors whose lines they
refund; a shipping refund is split over the order's vendors the way ``vendor_shipping`` split the shipping
(``proportional``: by the goods' value before any refund, to the cent; ``full``: the whole amount on each
vendor order, as each carried the whole shipping; ``method_only``: nothing, no vendor charged shipping).
"""

from __future__ import annotations

from decimal import Decimal

from ordersync.models import MerchantOrder, Refund, VendorRefund, VendorRefundLine, split_amount
from ordersync.orders.split import vendor_values

ZERO = Decimal("0")


def marker_for(refund: Refund) -> str:
    """Names the merchant refund in the vendor refund's note (Shopify) or reason (WooCommerce)."""
    return f"ordersync-refund-{refund.number}"


def shipping_part(order: MerchantOrder, refund: Refund, vendor: str, mode: str) -> Decimal:
    """``vendor``'s part of the refund's shipping, by ``vendor_shipping`` as it applies to that vendor: each
    refunded shipping line split as that line's price was split onto the vendor orders (so a line refunded
    whole gives each vendor back exactly what it was charged)."""
    if refund.shipping <= 0 or mode == "method_only":
        return ZERO
    values = vendor_values(order)
    if mode == "full" or vendor not in values:
        return refund.shipping
    amounts = [amount for _, amount in refund.shipping_lines] or [refund.shipping]
    return sum((split_amount(amount, dict(values))[vendor] for amount in amounts if amount > 0), ZERO)


def vendor_lines(order: MerchantOrder, refund: Refund, vendor: str) -> tuple[VendorRefundLine, ...]:
    """The refund's lines that are ``vendor``'s (``""``: lines without a vendor)."""
    by_id = {line.id: line for line in order.line_items}
    out = []
    for item in refund.lines:
        line = by_id.get(item.line_item_id)
        if line is None or (line.vendor or "") != vendor or item.quantity <= 0:
            continue
        out.append(
            VendorRefundLine(
                merchant_line_id=line.id,
                sku=line.sku,
                title=line.title,
                quantity=item.quantity,
                restock=item.restocked,
                amount=item.subtotal,
            )
        )
    return tuple(out)


def touches(order: MerchantOrder, refund: Refund, vendor: str, mode: str) -> bool:
    """Whether the vendor's order has anything to record of this refund."""
    return bool(vendor_lines(order, refund, vendor)) or shipping_part(order, refund, vendor, mode) > 0


def vendor_refund(order: MerchantOrder, refund: Refund, vendor: str, mode: str, key: str) -> VendorRefund:
    return VendorRefund(
        merchant_refund_id=refund.id,
        merchant_order_name=order.name,
        marker=marker_for(refund),
        key=key,
        currency=order.currency,
        lines=vendor_lines(order, refund, vendor),
        shipping=shipping_part(order, refund, vendor, mode),
    )


def describe(part: VendorRefund) -> str:
    """``1 × HAM-1 (restocked), shipping 2.50; 19.99 EUR``."""
    items = [
        f"{line.quantity} × {line.sku or line.title}" + (" (restocked)" if line.restock else "")
        for line in part.lines
    ]
    if part.shipping > 0:
        items.append(f"shipping {part.shipping}")
    return f"{', '.join(items) or 'nothing'}; {part.amount} {part.currency}"


def fully_refunded(order: MerchantOrder, vendor: str) -> bool:
    """Every unit of the vendor's lines was refunded (and none was removed some other way)."""
    lines = [line for line in order.line_items if (line.vendor or "") == vendor]
    return (
        bool(lines)
        and all(line.quantity <= 0 for line in lines)
        and any(order.refunded_quantity(line.id) > 0 for line in lines)
    )
