"""The webhook topics ordersync subscribes to, per role and platform, and which DAG each one wakes.

A delivery is only a hint: the run it starts re-reads the order, so the topic decides *which* DAG runs and
for which order, never what is written.
"""

from __future__ import annotations

# The merchant's Shopify store: changes to its orders start an ``order_sync`` run for those orders.
MERCHANT_TOPICS: tuple[str, ...] = (
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/edited",
    "orders/cancelled",
    "refunds/create",
)

# Vendor stores: changes to the vendor orders ordersync pushed start a ``tracking_sync`` run for them.
VENDOR_TOPICS: dict[str, tuple[str, ...]] = {
    "shopify": ("fulfillments/create", "fulfillments/update", "orders/updated", "orders/cancelled"),
    "woocommerce": ("order.updated",),
}

# Shopify's GraphQL WebhookSubscriptionTopic enum values for the REST-style topic names above.
SHOPIFY_TOPIC_ENUM: dict[str, str] = {
    "orders/create": "ORDERS_CREATE",
    "orders/paid": "ORDERS_PAID",
    "orders/updated": "ORDERS_UPDATED",
    "orders/edited": "ORDERS_EDITED",
    "orders/cancelled": "ORDERS_CANCELLED",
    "refunds/create": "REFUNDS_CREATE",
    "fulfillments/create": "FULFILLMENTS_CREATE",
    "fulfillments/update": "FULFILLMENTS_UPDATE",
}

MERCHANT_CONN_ID = "ordersync_merchant"
WEBHOOK_PATH = "/ordersync/webhooks/{conn_id}"  # under the Airflow API server's base URL


def callback_url(base_url: str, conn_id: str) -> str:
    """The receiver's URL for one connection: ``{base}/ordersync/webhooks/{conn_id}``."""
    return base_url.rstrip("/") + WEBHOOK_PATH.format(conn_id=conn_id)


def dag_for(role: str) -> str:
    """``order_sync`` for the merchant's events, ``tracking_sync`` for a vendor's."""
    return "order_sync" if role == "merchant" else "tracking_sync"
