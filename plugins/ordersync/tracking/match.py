"""Placing a vendor shipment's lines on the merchant's open fulfilment-order lines, and finding the merchant
fulfilment a shipment already became (pure; unit-tested)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ordersync.tracking.model import (
    OPEN_FULFILLMENT_ORDER_STATUSES,
    FulfillmentOrder,
    MerchantFulfillment,
    Tracking,
)


@dataclass
class Plan:
    """``lineItemsByFulfillmentOrder`` for fulfillmentCreate, and what could not be placed."""

    groups: list[dict[str, Any]]
    location_id: str | None
    shipped: list[tuple[str, int]]  # (SKU, quantity) placed
    unplaced: list[tuple[str, int]]  # (SKU, quantity) with no open merchant line left

    @property
    def empty(self) -> bool:
        return not self.groups

    def describe(self) -> str:
        return ", ".join(f"{qty} × {sku}" for sku, qty in self.shipped) or "nothing"


def match_lines(
    vendor: str,
    lines: list[tuple[str, int]] | tuple[tuple[str, int], ...],
    fulfillment_orders: list[FulfillmentOrder],
) -> Plan:
    """Place each vendor line (SKU, quantity) on the merchant's open fulfilment-order lines of the same SKU whose
    line item belongs to ``vendor``, up to each one's remaining quantity. Shopify takes one location per
    fulfilment: lines are placed at the first location that has any of them."""
    remaining = {fol.id: fol.remaining for fo in fulfillment_orders for fol in fo.lines}
    wanted: dict[str, int] = {}
    for sku, qty in lines:
        if sku and qty > 0:
            wanted[sku] = wanted.get(sku, 0) + qty
    placed: dict[str, dict[str, int]] = {}  # fulfilment order id -> {fo line id: qty}
    location: str | None = None
    shipped: dict[str, int] = {}
    for sku in list(wanted):
        for fo in fulfillment_orders:
            if wanted[sku] <= 0:
                break
            if fo.status not in OPEN_FULFILLMENT_ORDER_STATUSES:
                continue
            if location is not None and fo.location_id != location:
                continue
            for fol in fo.lines:
                if wanted[sku] <= 0:
                    break
                if fol.sku != sku or fol.vendor != vendor or remaining[fol.id] <= 0:
                    continue
                take = min(remaining[fol.id], wanted[sku])
                remaining[fol.id] -= take
                wanted[sku] -= take
                shipped[sku] = shipped.get(sku, 0) + take
                placed.setdefault(fo.id, {})[fol.id] = placed.get(fo.id, {}).get(fol.id, 0) + take
                location = fo.location_id
    groups = [
        {
            "fulfillmentOrderId": fo_id,
            "fulfillmentOrderLineItems": [{"id": i, "quantity": q} for i, q in items.items()],
        }
        for fo_id, items in placed.items()
    ]
    return Plan(
        groups=groups,
        location_id=location,
        shipped=list(shipped.items()),
        unplaced=[(sku, qty) for sku, qty in wanted.items() if qty > 0],
    )


def find_fulfillment(
    fulfillments: list[MerchantFulfillment], tracking: Tracking, exclude: set[str]
) -> MerchantFulfillment | None:
    """The merchant fulfilment an interrupted fulfillmentCreate made, matched by tracking numbers (the same set
    first, else any shared number); never a cancelled one or one already recorded for another shipment
    (``exclude``). A shipment without numbers matches an untracked fulfilment."""
    candidates = [f for f in fulfillments if f.id not in exclude and f.status != "CANCELLED"]
    if not tracking.numbers:
        return next((f for f in candidates if not f.tracking.numbers), None)
    wanted = set(tracking.numbers)
    return next((f for f in candidates if set(f.tracking.numbers) == wanted), None) or next(
        (f for f in candidates if wanted & set(f.tracking.numbers)), None
    )
