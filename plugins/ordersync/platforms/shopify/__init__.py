"""Shopify through the GraphQL Admin API 2026-10: the merchant's store and Shopify vendor stores.

``client`` (HTTP, cost bucket), ``documents`` (the ``graphql/`` files and page sizes), ``parse`` (answers as
models), ``payloads`` (what is sent), ``merchant`` and ``vendor`` (the two roles), ``webhooks`` (the webhook
subscriptions of either role).
"""

from __future__ import annotations

import re

from ordersync.platforms.base import StoreConnection
from ordersync.platforms.registry import Platform


def _gql(conn: StoreConnection, label: str, policy):
    from ordersync.platforms.shopify.client import ShopifyGraphQL
    from ordersync.platforms.shopify.documents import API_VERSION

    return ShopifyGraphQL(
        conn.base_url(),
        conn.secret("the Admin API access token"),
        label,
        api_version=conn.extra.get("api_version", API_VERSION),
        timeout=conn.timeout(),
        policy=policy,
    )


def open_merchant(conn: StoreConnection, policy=None):
    from ordersync.platforms.shopify.merchant import ShopifyMerchant

    return ShopifyMerchant(_gql(conn, f"merchant store ({conn.conn_id})", policy))


def open_vendor(conn: StoreConnection, vendor: str, policy=None):
    from ordersync.platforms.shopify.vendor import ShopifyVendor

    return ShopifyVendor(_gql(conn, f"vendor {vendor} (shopify, {conn.conn_id})", policy))


def open_subscriptions(conn: StoreConnection, label: str, secret: str, policy=None):
    """The shop's webhook subscriptions (merchant or vendor). Shopify signs deliveries with the app's client
    secret, so ``secret`` (the connection's ``webhook_secret``) is not sent."""
    from ordersync.platforms.shopify.webhooks import ShopifySubscriptions

    return ShopifySubscriptions(_gql(conn, label, policy))


PLATFORM = Platform(
    name="shopify",
    label="Shopify",
    open_vendor=open_vendor,
    # the cost bucket still paces them (see ShopifyGraphQL)
    default_concurrency=8,
    concurrency_env="ORDERSYNC_SHOPIFY_CONCURRENCY",
    stale_mapping=re.compile(
        r"variant\b.*\bdoes not exist|product\b.*\b(not found|does not exist)", re.IGNORECASE
    ),
    shipments_have_lines=True,
    open_subscriptions=open_subscriptions,
    # https://{shop}/admin/orders/{numeric id}; the ledger holds the order's GID
    admin_order_url=lambda base, order_id: f"{base}/admin/orders/{order_id.rsplit('/', 1)[-1]}",
)
