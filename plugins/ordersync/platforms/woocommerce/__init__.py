"""WooCommerce vendor stores through the REST API v3: ``vendor`` (the store), ``payloads`` (what is sent) and
``webhooks`` (the store's webhooks)."""

from __future__ import annotations

import re

from ordersync.platforms.base import StoreConnection, StoreError
from ordersync.platforms.registry import Platform


def open_vendor(conn: StoreConnection, vendor: str, policy=None):
    from ordersync.platforms.woocommerce.vendor import WooVendor

    if not conn.login:
        raise StoreError(f"connection {conn.conn_id} has no login (the WooCommerce consumer key)")
    return WooVendor(
        conn.base_url(),
        conn.login,
        conn.secret("the WooCommerce consumer secret"),
        f"vendor {vendor} (woocommerce, {conn.conn_id})",
        timeout=conn.timeout(),
        policy=policy,
    )


def open_subscriptions(conn: StoreConnection, label: str, secret: str, policy=None):
    """The store's webhooks; each is given ``secret`` (the connection's ``webhook_secret``) to sign with."""
    from ordersync.platforms.woocommerce.webhooks import WooSubscriptions

    if not conn.login:
        raise StoreError(f"connection {conn.conn_id} has no login (the WooCommerce consumer key)")
    return WooSubscriptions(
        conn.base_url(),
        conn.login,
        conn.secret("the WooCommerce consumer secret"),
        label,
        conn.conn_id,
        secret,
        timeout=conn.timeout(),
        policy=policy,
    )


PLATFORM = Platform(
    name="woocommerce",
    label="WooCommerce",
    open_vendor=open_vendor,
    # WooCommerce has no published limit; a PHP site serves a few requests at a time
    default_concurrency=4,
    concurrency_env="ORDERSYNC_WOO_CONCURRENCY",
    stale_mapping=re.compile(r"invalid_product_id|product\b.*\b(not found|does not exist)", re.IGNORECASE),
    shipments_have_lines=False,
    open_subscriptions=open_subscriptions,
    # the classic order screen; with HPOS on, WooCommerce redirects it to admin.php?page=wc-orders&action=edit
    admin_order_url=lambda base, order_id: f"{base}/wp-admin/post.php?post={order_id}&action=edit",
)
