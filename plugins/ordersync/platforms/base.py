"""What every store platform provides, and the errors every store call raises.

A vendor store resolves SKUs, finds an order by its link-back marker, creates orders, and edits, reads and
cancels the orders it created, and lists its shipments for ``tracking_sync``. The merchant store (Shopify)
lists orders and takes fulfilments. Platform packages implement these; the domain sees only these names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ordersync.models import (
    Mapping,
    RecordedRefund,
    VendorOrderDraft,
    VendorOrderRef,
    VendorOrderState,
    VendorRefund,
)
from ordersync.tracking.model import ShippedOrder


class StoreError(Exception):
    """A store call failed; the message names the store and says what happened."""


class TransientError(StoreError):
    def __init__(self, message: str, maybe_committed: bool = False) -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed


class PermanentError(StoreError):
    """The store refused the request; retrying the same request will not help."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class StoreConnection:
    """What ordersync needs of an Airflow Connection (kept free of Airflow types)."""

    conn_id: str
    host: str
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def base_url(self) -> str:
        host = (self.host or "").rstrip("/")
        if not host:
            raise StoreError(f"connection {self.conn_id} has no host (the store's base URL)")
        return host if "://" in host else f"https://{host}"

    def timeout(self) -> float:
        return float(self.extra.get("timeout", 30))

    def secret(self, what: str) -> str:
        """The connection's password, which holds ``what`` (a token, a consumer secret)."""
        if not self.password:
            raise StoreError(f"connection {self.conn_id} has no password ({what})")
        return self.password


class VendorStore(Protocol):
    platform: str
    calls: int
    throttled: int

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]: ...

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None: ...

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef: ...

    def update_order(
        self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str
    ) -> None: ...

    def order_state(self, vendor_order_id: str) -> VendorOrderState: ...

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None: ...

    # optional (a platform without it, or with ``refunds`` null in platform_capabilities.json, takes no
    # refunds: a refund is a manual line and an alert)
    def record_refund(self, vendor_order_id: str, part: VendorRefund) -> RecordedRefund: ...

    def shipped_orders(
        self, since: datetime | None = None, order_ids: list[str] | None = None, only: set[str] | None = None
    ) -> Iterator[ShippedOrder]: ...

    def close(self) -> None: ...
