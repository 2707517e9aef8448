"""The platforms ordersync speaks, by name: one registry line per platform package.

Each package declares a :class:`Platform`: how to open a vendor store from a connection, how to open its
webhook subscriptions (``ordersync_webhooks``), how many requests to keep in flight, and how its errors read
(a product that is gone, rejected credentials). What it can do on an
existing order is data in ``include/rules/platform_capabilities.json`` under the same name. Settings, the
push, alerts and tracking ask here; nothing else names a platform.

The packages are imported on first use, so loading this module (every Airflow process imports the plugin)
costs nothing.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from ordersync.paths import rules_dir
from ordersync.platforms.base import StoreConnection, StoreError

if TYPE_CHECKING:
    from ordersync.events.subscribe import SubscriptionStore
    from ordersync.platforms.base import VendorStore
    from ordersync.platforms.http import RetryPolicy

# name -> the package that declares it (``PLATFORM``). Adding a platform adds a line here.
REGISTERED: dict[str, str] = {
    "shopify": "ordersync.platforms.shopify",
    "woocommerce": "ordersync.platforms.woocommerce",
}


@dataclass(frozen=True)
class Platform:
    name: str
    label: str  # as operators read it: "Shopify", "WooCommerce"
    open_vendor: Callable[[StoreConnection, str, RetryPolicy | None], VendorStore]
    default_concurrency: int  # requests in flight against one store of this platform
    concurrency_env: str  # the variable that overrides it
    stale_mapping: re.Pattern[str]  # a create refused because a mapped product is gone
    shipments_have_lines: bool  # a vendor shipment names its lines (else: the whole order)
    # (conn, label, webhook_secret, policy) -> the store's webhook subscriptions; None: the platform has none
    open_subscriptions: (
        Callable[[StoreConnection, str, str, RetryPolicy | None], SubscriptionStore] | None
    ) = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    # (the store's base URL, a vendor order id as the ledger holds it) -> that order in the store's admin
    admin_order_url: Callable[[str, str], str] | None = None

    def concurrency(self) -> int:
        """``<concurrency_env>`` if set to a positive number, else the default."""
        try:
            return max(1, int(os.environ.get(self.concurrency_env, self.default_concurrency)))
        except ValueError:
            return self.default_concurrency

    @property
    def update_fields(self) -> tuple[str, ...]:
        return tuple(self.capabilities.get("update_fields", ()))

    @property
    def locations(self) -> bool:
        return bool(self.capabilities.get("locations"))


def names() -> tuple[str, ...]:
    """Every registered platform, in registry order."""
    return tuple(REGISTERED)


@lru_cache(maxsize=1)
def _capabilities() -> dict[str, Any]:
    return json.loads((rules_dir() / "platform_capabilities.json").read_text())


@cache
def get(name: str) -> Platform:
    """The platform called ``name``; :class:`StoreError` "unknown platform" for any other name."""
    if name not in REGISTERED:
        raise StoreError(f"unknown platform {name!r} (known platforms: {', '.join(REGISTERED)})")
    declared: Platform = importlib.import_module(REGISTERED[name]).PLATFORM
    if declared.name != name:
        raise RuntimeError(f"{REGISTERED[name]} declares platform {declared.name!r}, registered as {name!r}")
    capabilities = _capabilities().get(name)
    if capabilities is None:
        raise RuntimeError(f"include/rules/platform_capabilities.json has no entry for platform {name!r}")
    return Platform(**{**declared.__dict__, "capabilities": capabilities})


def capabilities(name: str) -> dict[str, Any]:
    return get(name).capabilities


def open_vendor(
    platform: str, conn: StoreConnection, vendor: str, policy: RetryPolicy | None = None
) -> VendorStore:
    return get(platform).open_vendor(conn, vendor, policy)


def open_subscriptions(
    platform: str, conn: StoreConnection, label: str, secret: str, policy: RetryPolicy | None = None
) -> SubscriptionStore:
    """The webhook subscriptions of one store of ``platform``; :class:`StoreError` when it has none."""
    declared = get(platform)
    if declared.open_subscriptions is None:
        raise StoreError(f"platform {platform!r} has no webhook subscriptions ordersync can manage")
    return declared.open_subscriptions(conn, label, secret, policy)
