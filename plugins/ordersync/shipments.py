"""Shipments read from vendor stores, and the pure rules that turn them into merchant fulfilments.

Platform-free and side-effect free (unit-tested): the carrier map (data in
``include/rules/carriers.json``), the tracking fingerprint, and the matching of a
vendor shipment's lines to the merchant's open fulfilment-order lines.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from ordersync.paths import rules_dir

OPEN_FULFILLMENT_ORDER_STATUSES = ("OPEN", "IN_PROGRESS")


@dataclass(frozen=True)
class Tracking:
    """What the merchant fulfilment carries: one company, every number, their URLs (same order)."""
    company: str | None = None
    numbers: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        raw = json.dumps({"company": self.company or "", "numbers": list(self.numbers), "urls": list(self.urls)},
                         sort_keys=True)
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
    key: str                                        # Shopify fulfilment GID / WooCommerce tracking_id
    tracking: Tracking
    lines: tuple[tuple[str, int], ...] | None       # (SKU, quantity); None = "the order's still-unshipped lines"
    created_at: datetime | None = None


@dataclass(frozen=True)
class ShippedOrder:
    """A vendor order as tracking_sync reads it."""
    id: str
    name: str
    updated_at: datetime | None
    status: str                                     # platform status (display fulfilment status / Woo status)
    shipments: tuple[Shipment, ...] = ()
    lines: tuple[tuple[str, int], ...] = ()         # the vendor order's own lines (WooCommerce)
    cancelled: bool = False
    whole_order_tracking: bool = False              # WooCommerce: every tracking item belongs to one shipment
    error: str | None = None                        # unreadable (one bad order never stops the batch)


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


# -- carriers -----------------------------------------------------------------------------------------------------
def _carrier_key(name: str) -> str:
    """Case, spaces and punctuation do not matter: "Royal Mail", "royal-mail" (a WooCommerce slug), "ROYAL MAIL"."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@lru_cache(maxsize=1)
def _carriers() -> dict[str, str]:
    data = json.loads((rules_dir() / "carriers.json").read_text())
    return {_carrier_key(str(k)): str(v) for k, v in data["to_shopify"].items()}


def shopify_company(name: str | None) -> str | None:
    """The merchant-side tracking company for a vendor's carrier name; an unknown name is passed as is."""
    if name is None or not str(name).strip():
        return None
    return _carriers().get(_carrier_key(str(name)), str(name).strip())


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


# -- line matching ------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """``lineItemsByFulfillmentOrder`` for fulfillmentCreate, and what could not be placed."""
    groups: list[dict[str, Any]]
    location_id: str | None
    shipped: list[tuple[str, int]]                  # (SKU, quantity) placed
    unplaced: list[tuple[str, int]]                 # (SKU, quantity) with no open merchant line left

    @property
    def empty(self) -> bool:
        return not self.groups

    def describe(self) -> str:
        return ", ".join(f"{qty} × {sku}" for sku, qty in self.shipped) or "nothing"


def match_lines(vendor: str, lines: list[tuple[str, int]] | tuple[tuple[str, int], ...],
                fulfillment_orders: list[FulfillmentOrder]) -> Plan:
    """Place each vendor line (SKU, quantity) on the merchant's open fulfilment-order lines of the same SKU whose
    line item belongs to ``vendor``, up to each one's remaining quantity. Shopify takes one location per
    fulfilment: lines are placed at the first location that has any of them."""
    remaining = {fol.id: fol.remaining for fo in fulfillment_orders for fol in fo.lines}
    wanted: dict[str, int] = {}
    for sku, qty in lines:
        if sku and qty > 0:
            wanted[sku] = wanted.get(sku, 0) + qty
    placed: dict[str, dict[str, int]] = {}          # fulfilment order id -> {fo line id: qty}
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
    groups = [{"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": [{"id": i, "quantity": q}
                                                                          for i, q in items.items()]}
              for fo_id, items in placed.items()]
    return Plan(groups=groups, location_id=location, shipped=list(shipped.items()),
                unplaced=[(sku, qty) for sku, qty in wanted.items() if qty > 0])


def find_fulfillment(fulfillments: list[MerchantFulfillment], tracking: Tracking,
                     exclude: set[str]) -> MerchantFulfillment | None:
    """The merchant fulfilment an interrupted fulfillmentCreate made, matched by tracking numbers (the same set
    first, else any shared number); never a cancelled one or one already recorded for another shipment
    (``exclude``). A shipment without numbers matches an untracked fulfilment."""
    candidates = [f for f in fulfillments if f.id not in exclude and f.status != "CANCELLED"]
    if not tracking.numbers:
        return next((f for f in candidates if not f.tracking.numbers), None)
    wanted = set(tracking.numbers)
    return (next((f for f in candidates if set(f.tracking.numbers) == wanted), None)
            or next((f for f in candidates if wanted & set(f.tracking.numbers)), None))
