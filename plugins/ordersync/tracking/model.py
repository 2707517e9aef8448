"""Shipments read from vendor stores and the merchant's fulfilment state, as platform-free values."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OPEN_FULFILLMENT_ORDER_STATUSES = ("OPEN", "IN_PROGRESS")
# how the staff note ordersync gives a Shopify vendor order it cancels begins (``orders/push.py``)
ORDERSYNC_CANCEL_NOTE = "Cancelled at the marketplace:"


@dataclass(frozen=True)
class Tracking:
    """What the merchant fulfilment carries: one company, every number, their URLs (same order)."""

    company: str | None = None
    numbers: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        raw = json.dumps(
            {"company": self.company or "", "numbers": list(self.numbers), "urls": list(self.urls)},
            sort_keys=True,
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def describe(self) -> str:
        if not self.numbers:
            return f"no tracking number{f' ({self.company})' if self.company else ''}"
        return f"{self.company or 'unknown carrier'} {', '.join(self.numbers)}"

    def as_input(self) -> dict[str, Any]:
        """``FulfillmentTrackingInput``: URLs only when every number has one (Shopify pairs them by position)."""
        out: dict[str, Any] = {}
        if self.company:
            out["company"] = self.company
        if self.numbers:
            out["numbers"] = list(self.numbers)
            if self.urls and len(self.urls) == len(self.numbers) and all(self.urls):
                out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True)
class Shipment:
    """One vendor shipment: a Shopify fulfilment (its lines) or a WooCommerce tracking item (no lines)."""

    key: str  # Shopify fulfilment GID / WooCommerce tracking_id
    tracking: Tracking
    lines: tuple[tuple[str, int], ...] | None  # (SKU, quantity); None = "the order's still-unshipped lines"
    created_at: datetime | None = None


@dataclass(frozen=True)
class ShippedOrder:
    """A vendor order as tracking_sync reads it."""

    id: str
    name: str
    updated_at: datetime | None
    status: str  # platform status (display fulfilment status / Woo status)
    shipments: tuple[Shipment, ...] = ()
    lines: tuple[tuple[str, int], ...] = ()  # the vendor order's own lines (WooCommerce)
    cancelled: bool = False
    whole_order_tracking: bool = False  # WooCommerce: every tracking item belongs to one shipment
    error: str | None = None  # unreadable (one bad order never stops the batch)
    # a cancelled order: when, the store's reason (Shopify ``cancelReason INVENTORY``, WooCommerce ``status
    # cancelled``), a note the vendor left with it (Shopify staff note, WooCommerce latest order note)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    cancel_note: str | None = None
    refunded: bool = False  # WooCommerce ``refunded``: maybe by the refunds ordersync mirrored there

    def cancelled_by_ordersync(self) -> bool:
        """Cancelled through ordersync's own orderCancel (its staff note, ``orders/push.py``): a cancellation
        the ledger may not have recorded yet (the push task died in between), not the vendor's."""
        return bool(self.cancel_note and self.cancel_note.startswith(ORDERSYNC_CANCEL_NOTE))


@dataclass
class FulfillmentOrderLine:
    id: str
    remaining: int
    sku: str | None
    vendor: str | None
    line_item_id: str | None = None


@dataclass
class FulfillmentOrder:
    id: str
    status: str
    location_id: str | None
    lines: list[FulfillmentOrderLine] = field(default_factory=list)


@dataclass(frozen=True)
class MerchantFulfillment:
    id: str
    status: str
    tracking: Tracking
    created_at: str | None = None


@dataclass
class MerchantFulfillmentState:
    order_id: str
    name: str
    status: str
    fulfillment_orders: list[FulfillmentOrder]
    fulfillments: list[MerchantFulfillment]


def combine(trackings: list[Tracking]) -> Tracking:
    """Several tracking items (WooCommerce) as one fulfilment's tracking: the first company, every number."""
    numbers: list[str] = []
    urls: list[str] = []
    for t in trackings:
        for i, number in enumerate(t.numbers):
            if number not in numbers:
                numbers.append(number)
                urls.append(t.urls[i] if i < len(t.urls) else "")
    company = next((t.company for t in trackings if t.company), None)
    return Tracking(company=company, numbers=tuple(numbers), urls=tuple(urls) if any(urls) else ())


# -- staging (tracking_sync's run scratch between the vendor tasks and the merchant writer) -------------------
def to_json(order: ShippedOrder) -> str:
    def shipment(s: Shipment) -> dict[str, Any]:
        return {
            "key": s.key,
            "tracking": {
                "company": s.tracking.company,
                "numbers": s.tracking.numbers,
                "urls": s.tracking.urls,
            },
            "lines": s.lines,
            "created_at": s.created_at.isoformat() if s.created_at else None,
        }

    return json.dumps(
        {
            "id": order.id,
            "name": order.name,
            "updated_at": order.updated_at.isoformat() if order.updated_at else None,
            "status": order.status,
            "shipments": [shipment(s) for s in order.shipments],
            "lines": order.lines,
            "cancelled": order.cancelled,
            "whole_order_tracking": order.whole_order_tracking,
            "error": order.error,
            "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
            "cancel_reason": order.cancel_reason,
            "cancel_note": order.cancel_note,
            "refunded": order.refunded,
        }
    )


def from_json(raw: str) -> ShippedOrder:
    data = json.loads(raw)

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    def lines(value: list[list[Any]] | None) -> tuple[tuple[str, int], ...] | None:
        return None if value is None else tuple((sku, int(qty)) for sku, qty in value)

    return ShippedOrder(
        id=data["id"],
        name=data["name"],
        updated_at=when(data["updated_at"]),
        status=data["status"],
        shipments=tuple(
            Shipment(
                key=s["key"],
                tracking=Tracking(
                    company=s["tracking"]["company"],
                    numbers=tuple(s["tracking"]["numbers"]),
                    urls=tuple(s["tracking"]["urls"]),
                ),
                lines=lines(s["lines"]),
                created_at=when(s["created_at"]),
            )
            for s in data["shipments"]
        ),
        lines=lines(data["lines"]) or (),
        cancelled=data["cancelled"],
        whole_order_tracking=data["whole_order_tracking"],
        error=data["error"],
        cancelled_at=when(data.get("cancelled_at")),
        cancel_reason=data.get("cancel_reason"),
        cancel_note=data.get("cancel_note"),
        refunded=bool(data.get("refunded")),
    )
