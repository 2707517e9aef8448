"""Store platforms behind one small interface (:mod:`~ordersync.platforms.base`), found by name in the
:mod:`~ordersync.platforms.registry`; one package per platform (``shopify/``, ``woocommerce/``)."""

from __future__ import annotations

from ordersync.platforms.base import PermanentError, StoreConnection, StoreError, TransientError, VendorStore
from ordersync.platforms.registry import capabilities, open_vendor

__all__ = [
    "StoreConnection",
    "VendorStore",
    "capabilities",
    "open_merchant",
    "open_vendor",
    "StoreError",
    "TransientError",
    "PermanentError",
]


def open_merchant(conn: StoreConnection, policy=None):
    """The merchant's store (always Shopify)."""
    from ordersync.platforms.shopify import open_merchant as shopify_merchant

    return shopify_merchant(conn, policy)
