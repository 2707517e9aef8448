"""Refunds on Shopify: the merchant order's refunds read, and a refund's part recorded on a vendor order.

Reading: ``MerchantOrderRefunds`` for an order that has refunds (its financial status says so, or a line's
current quantity is below its ordered quantity), so the orders page stays under the 1,000-point limit.
Recording: ``refundCreate`` with the refunded line items and quantities, restocked when the merchant restocked,
this vendor's part of the shipping, **no transactions** (nothing is paid out by the vendor store), and the
``@idempotent`` key made from the ledger's refund row.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ordersync.models import RecordedRefund, Refund, RefundLine, VendorRefund
from ordersync.platforms.http import PermanentError
from ordersync.platforms.shopify.documents import REFUND_LINES, REFUND_SHIPPING_LINES, REFUNDS_PAGE_SIZE

REFUNDED = ("PARTIALLY_REFUNDED", "REFUNDED")


class RefundsUnreadable(ValueError):
    """The order's refunds do not fit one read: the order is still synced, its refunds are mirrored by hand."""


def _amount(bag: Any) -> Decimal:
    return Decimal(str((((bag or {}).get("shopMoney") or {}).get("amount")) or "0"))


def has_refunds(node: dict[str, Any], lines: list[dict[str, Any]]) -> bool:
    """Whether an ``Order`` node (with its line nodes) may have refunds worth reading."""
    if node.get("displayFinancialStatus") in REFUNDED:
        return True
    return any(
        line.get("currentQuantity") is not None
        and line.get("quantity") is not None
        and int(line["currentQuantity"]) < int(line["quantity"])
        for line in lines
    )


def read_refunds(gql: Any, order_id: str, name: str) -> tuple[Refund, ...]:
    """The order's refunds, oldest first. Raises ValueError when they do not fit one read."""
    data = gql.execute(
        "MerchantOrderRefunds",
        {
            "id": order_id,
            "refunds": REFUNDS_PAGE_SIZE,
            "lines": REFUND_LINES,
            "shipping": REFUND_SHIPPING_LINES,
        },
    )
    order = data.get("order") or {}
    nodes = order.get("refunds") or []
    if len(nodes) >= REFUNDS_PAGE_SIZE:
        raise RefundsUnreadable(f"{name} has {REFUNDS_PAGE_SIZE} or more refunds: more than one read holds")
    out = []
    for node in nodes:
        lines = node.get("refundLineItems") or {}
        shipping = node.get("refundShippingLines") or {}
        if (lines.get("pageInfo") or {}).get("hasNextPage") or (shipping.get("pageInfo") or {}).get(
            "hasNextPage"
        ):
            raise RefundsUnreadable(
                f"refund {node['id'].rsplit('/', 1)[-1]} of {name} has more than {REFUND_LINES} lines or "
                f"{REFUND_SHIPPING_LINES} shipping lines: more than one read holds"
            )
        out.append(
            Refund(
                id=node["id"],
                created_at=node["createdAt"],
                note=node.get("note"),
                lines=tuple(
                    RefundLine(
                        line_item_id=(item.get("lineItem") or {}).get("id") or "",
                        quantity=int(item.get("quantity") or 0),
                        restock_type=item.get("restockType") or "NO_RESTOCK",
                        subtotal=_amount(item.get("subtotalSet")),
                        tax=_amount(item.get("totalTaxSet")),
                    )
                    for item in lines.get("nodes") or []
                ),
                shipping=sum(
                    (_amount(s.get("subtotalAmountSet")) for s in shipping.get("nodes") or []), Decimal(0)
                ),
                shipping_tax=sum(
                    (_amount(s.get("taxAmountSet")) for s in shipping.get("nodes") or []), Decimal(0)
                ),
            )
        )
    return tuple(sorted(out, key=lambda r: (r.created_at, r.id)))


def refund_line_inputs(
    part: VendorRefund, lines: list[dict[str, Any]], label: str
) -> tuple[list[dict[str, Any]], int]:
    """``RefundLineItemInput`` for the part's lines, found on the vendor order by SKU (else title), a quantity
    spread over several vendor lines of one item (a price split into two lines); and how many of the units were
    already fulfilled at the vendor. Raises PermanentError when the vendor order lacks them."""
    left = {line["id"]: int(line.get("refundableQuantity") or 0) for line in lines}
    unfulfilled = {line["id"]: int(line.get("unfulfilledQuantity") or 0) for line in lines}
    out: list[dict[str, Any]] = []
    shipped = 0
    for want in part.lines:
        same = [
            line
            for line in lines
            if (want.sku and line.get("sku") == want.sku)
            or (not want.sku and line.get("title") == want.title)
        ]
        need = want.quantity
        for line in same:
            take = min(need, left[line["id"]])
            if take <= 0:
                continue
            open_units = min(take, unfulfilled[line["id"]])
            shipped += take - open_units
            if want.restock:  # unfulfilled units are cancelled back to stock, shipped ones returned
                if open_units:
                    out.append({"lineItemId": line["id"], "quantity": open_units, "restockType": "CANCEL"})
                if take - open_units:
                    out.append(
                        {"lineItemId": line["id"], "quantity": take - open_units, "restockType": "RETURN"}
                    )
            else:
                out.append({"lineItemId": line["id"], "quantity": take, "restockType": "NO_RESTOCK"})
            left[line["id"]] -= take
            unfulfilled[line["id"]] -= open_units
            need -= take
        if need > 0:
            raise PermanentError(
                f"{label}: the vendor order has {want.quantity - need} of {want.sku or want.title} left to refund, "
                f"the merchant refunded {want.quantity}"
            )
    return out, shipped


class ShopifyRefunds:
    """The refund half of :class:`~ordersync.platforms.shopify.vendor.ShopifyVendor`."""

    gql: Any

    def record_refund(self, vendor_order_id: str, part: VendorRefund) -> RecordedRefund:
        """The part on the vendor order, once: an existing refund carrying the part's marker is returned as
        found; else ``refundCreate`` (its idempotency key returns the same refund for a repeated request)."""
        label = self.gql.label
        order = self.gql.execute("VendorOrderRefunds", {"id": vendor_order_id})["order"]
        if order is None:
            raise PermanentError(f"{label}: vendor order {vendor_order_id} no longer exists")
        for refund in order.get("refunds") or []:
            if f"({part.marker})" in (refund.get("note") or ""):
                return RecordedRefund(id=refund["id"], found=True)
        if order["lineItems"]["pageInfo"]["hasNextPage"]:
            raise PermanentError(
                f"{label}: vendor order {order['name']} has more than 50 lines: refund it by hand"
            )
        if order.get("cancelledAt"):
            raise PermanentError(f"{label}: vendor order {order['name']} is cancelled: no refund to record")
        items, shipped = refund_line_inputs(part, order["lineItems"]["nodes"], label)
        refund_input: dict[str, Any] = {
            "orderId": vendor_order_id,
            "note": part.note,
            "notify": False,
            "refundLineItems": items,
            "transactions": [],
        }
        if part.shipping > 0:
            refund_input["shipping"] = {"amount": str(part.shipping)}
        result = self.gql.execute(
            "VendorRefundCreate", {"input": refund_input, "key": part.key}, mutation=True
        )["refundCreate"]
        errors = result.get("userErrors") or []
        if errors:
            described = "; ".join(
                f"{'.'.join(e.get('field') or []) or 'input'}: {e['message']}" for e in errors
            )
            raise PermanentError(f"{label}: refundCreate refused: {described}")
        return RecordedRefund(id=result["refund"]["id"], found=False, shipped_units=shipped)
