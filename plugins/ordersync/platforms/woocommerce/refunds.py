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

from ordersync.models import RecordedRefund, VendorRefund, cents, split_amount
from ordersync.platforms.http import PermanentError, TransientError

CANCELLED = ("cancelled", "failed")


def _meta(item: dict[str, Any], key: str) -> str | None:
    for meta in item.get("meta_data") or []:
        if meta.get("key") == key:
            return str(meta.get("value"))
    return None


def _taxes(item: dict[str, Any], share: Decimal) -> dict[str, Any]:
    """``refund_tax`` for a vendor line or shipping line: ``share`` of each tax the vendor store charged on it
    (WooCommerce computes its own taxes; the merchant's do not apply there)."""
    taxes = [
        {"id": t["id"], "refund_total": str(cents(Decimal(str(t.get("total") or "0")) * share))}
        for t in item.get("taxes") or []
        if Decimal(str(t.get("total") or "0")) != 0
    ]
    return {"refund_tax": taxes} if taxes else {}


def refund_body(part: VendorRefund, order: dict[str, Any], label: str) -> tuple[dict[str, Any], int]:
    """The ``POST /orders/{id}/refunds`` body, and how many refunded units the vendor had already shipped
    (all of them once the order is ``completed``): the lines' refunded value (the merchant's), the vendor's
    part of the shipping, and the same share of the taxes the vendor store charged on them; ``amount`` is
    their sum. Raises PermanentError when the order lacks a line."""
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
            item = {"id": line["id"], "quantity": want.quantity, "refund_total": str(want.amount)}
            item.update(
                _taxes(line, Decimal(want.quantity) / Decimal(max(int(line.get("quantity") or 1), 1)))
            )
            items.append(item)
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
        by_id = {str(s["id"]): s for s in lines}
        weights = {sid: Decimal(str(s.get("total") or "0")) for sid, s in by_id.items()}
        for sid, amount in split_amount(part.shipping, weights).items():
            if amount > 0:
                item = {"id": int(sid) if sid.isdigit() else sid, "refund_total": str(amount)}
                share = amount / weights[sid] if weights[sid] > 0 else Decimal(0)
                item.update(_taxes(by_id[sid], share))
                items.append(item)
    total = sum(
        (
            Decimal(str(i["refund_total"]))
            + sum((Decimal(t["refund_total"]) for t in i.get("refund_tax", [])), Decimal(0))
            for i in items
        ),
        Decimal(0),
    )
    body = {
        "amount": str(total),
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
            if f"({part.marker})" in str(refund.get("reason") or ""):
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
