"""Store platforms behind one small interface.

A vendor store resolves SKUs, finds an order by its link-back marker,
creates orders, and edits, reads and cancels the orders it created. What each platform accepts is data in
``include/rules/platform_capabilities.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from ordersync.models import Mapping, VendorOrderDraft, VendorOrderRef, VendorOrderState
from ordersync.paths import rules_dir
from ordersync.platforms.transport import PermanentError, RetryPolicy, StoreError, TransientError

__all__ = ["StoreConnection", "VendorStore", "capabilities", "open_merchant", "open_vendor", "StoreError",
           "TransientError", "PermanentError"]


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


class VendorStore(Protocol):
    platform: str
    calls: int
    throttled: int

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]: ...

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None: ...

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef: ...

    def update_order(self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str) -> None: ...

    def order_state(self, vendor_order_id: str) -> VendorOrderState: ...

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None: ...

    def close(self) -> None: ...


@lru_cache(maxsize=1)
def _capabilities() -> dict[str, Any]:
    return json.loads((rules_dir() / "platform_capabilities.json").read_text())


def capabilities(platform: str) -> dict[str, Any]:
    try:
        return _capabilities()[platform]
    except KeyError:
        raise StoreError(f"unknown platform {platform!r}") from None


def _require_secret(conn: StoreConnection, what: str) -> str:
    if not conn.password:
        raise StoreError(f"connection {conn.conn_id} has no password ({what})")
    return conn.password


def open_merchant(conn: StoreConnection, policy: RetryPolicy | None = None):
    from ordersync.platforms.shopify import API_VERSION, ShopifyGraphQL, ShopifyMerchant

    gql = ShopifyGraphQL(conn.base_url(), _require_secret(conn, "the Admin API access token"),
                         f"merchant store ({conn.conn_id})", api_version=conn.extra.get("api_version", API_VERSION),
                         timeout=conn.timeout(), policy=policy)
    return ShopifyMerchant(gql)


def open_vendor(platform: str, conn: StoreConnection, vendor: str, policy: RetryPolicy | None = None) -> VendorStore:
    label = f"vendor {vendor} ({platform}, {conn.conn_id})"
    if platform == "shopify":
        from ordersync.platforms.shopify import API_VERSION, ShopifyGraphQL, ShopifyVendor

        return ShopifyVendor(ShopifyGraphQL(conn.base_url(), _require_secret(conn, "the Admin API access token"),
                                            label, api_version=conn.extra.get("api_version", API_VERSION),
                                            timeout=conn.timeout(), policy=policy))
    if platform == "woocommerce":
        from ordersync.platforms.woocommerce import WooVendor

        if not conn.login:
            raise StoreError(f"connection {conn.conn_id} has no login (the WooCommerce consumer key)")
        return WooVendor(conn.base_url(), conn.login, _require_secret(conn, "the WooCommerce consumer secret"), label,
                         timeout=conn.timeout(), policy=policy)
    raise StoreError(f"unknown platform {platform!r}")
