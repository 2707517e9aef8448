"""A merchant refund's part recorded on a WooCommerce vendor order: ``POST /orders/{id}/refunds``.

``line_items`` name the vendor order's items (found by SKU; an unmapped line pushed as a fee line by its SKU
meta or name) with the refunded quantity and value, this vendor's part of the shipping goes on its shipping
lines, ``api_restock`` (WooCommerce's ``restock_items``) when the merchant restocked, and ``api_refund: false``:
WooCommerce records the refund without asking a payment gateway to pay anything. The refund's ``reason``
carries the merchant refund's marker, so a refund an earlier, lost answer created is found on the order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ordersync.models import RecordedRefund, VendorRefund, split_amount
from ordersync.platforms.http import PermanentError, TransientError

CANCELLED = ("cancelled", "failed")


def _meta(item: dict[str, Any], key: str) -> str | None:
    for meta in item.get("meta_data") or []:
        if meta.get("key") == key:
            return str(meta.get("value"))
    return None


def refund_body(part: VendorRefund, order: dict[str, Any], label: str) -> tuple[dict[str, Any], int]:
    """The ``POST /orders/{id}/refunds`` body, and how many refunded units the vendor had already shipped
    (all of them once the order is ``completed``). Raises PermanentError when the order lacks a line."""
    items: list[dict[str, Any]] = []
    units = 0
    for want in part.lines:
        match = [
            line
            for line in order.get("line_items") or []
            if (want.sku and line.get("sku") == want.sku) or (not want.sku and line.get("name") == want.title)
        ]
        if match:
            line = match[0]
            items.append({"id": line["id"], "quantity": want.quantity, "refund_total": str(want.amount)})
            units += want.quantity
            continue
        fees = [
            fee
            for fee in order.get("fee_lines") or []
            if (want.sku and _meta(fee, "SKU") == want.sku)
            or str(fee.get("name") or "").startswith(want.title)
        ]
        if not fees:
            raise PermanentError(
                f"{label}: vendor order {order.get('id')} has no line for {want.sku or want.title} to refund"
            )
        items.append({"id": fees[0]["id"], "refund_total": str(want.amount)})  # a fee line has no quantity
        units += want.quantity
    if part.shipping > 0:
        lines = order.get("shipping_lines") or []
        if not lines:
            raise PermanentError(f"{label}: vendor order {order.get('id')} has no shipping line to refund")
        weights = {str(s["id"]): Decimal(str(s.get("total") or "0")) for s in lines}
        for sid, amount in split_amount(part.shipping, weights).items():
            if amount > 0:
                items.append({"id": int(sid) if sid.isdigit() else sid, "refund_total": str(amount)})
    body = {
        "amount": str(part.amount),
        "reason": part.note,
        "line_items": items,
        "api_refund": False,  # record only: the merchant refunded the buyer, the vendor pays nothing out
        "api_restock": bool(part.lines) and all(line.restock for line in part.lines),
    }
    shipped = units if order.get("status") == "completed" else 0
    return body, shipped


class WooRefunds:
    """The refund half of :class:`~ordersync.platforms.woocommerce.vendor.WooVendor`."""

    http: Any
    label: str

    def record_refund(self, vendor_order_id: str, part: VendorRefund) -> RecordedRefund:
        """The part on the vendor order, once: a refund whose reason carries the part's marker is returned as
        found; else a new refund."""
        _, _, order = self.http.request("GET", f"/orders/{vendor_order_id}")
        if not isinstance(order, dict):
            raise TransientError(f"{self.label}: GET /orders/{vendor_order_id} answered no order")
        for refund in order.get("refunds") or []:
            if part.marker in str(refund.get("reason") or ""):
                return RecordedRefund(id=str(refund["id"]), found=True)
        if order.get("status") in CANCELLED:
            raise PermanentError(
                f"{self.label}: vendor order {vendor_order_id} is {order['status']}: no refund to record"
            )
        body, shipped = refund_body(part, order, self.label)
        _, _, refund = self.http.request(
            "POST", f"/orders/{vendor_order_id}/refunds", json_body=body, idempotent=False
        )
        if not isinstance(refund, dict) or "id" not in refund:
            raise TransientError(
                f"{self.label}: POST /orders/{vendor_order_id}/refunds answered without a refund id",
                maybe_committed=True,
            )
        return RecordedRefund(id=str(refund["id"]), found=False, shipped_units=shipped)
