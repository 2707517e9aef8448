"""The GraphQL documents ordersync sends to Shopify (``graphql/*.graphql``, validated against the real Admin
2026-10 schema by the tests) and the page sizes that keep each query's requested cost under Shopify's
1,000-point single-query limit (a test computes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

API_VERSION = "2026-10"
GRAPHQL_DIR = Path(__file__).parent / "graphql"

# MerchantOrders costs about 2 + first x (50 + 2 + 9 x lineItems) (a line with its discount allocations and
# tax lines is 9; the order with its risk and 5 shipping lines about 50); 5 x 13 is about 820, which also
# fits a small 900-point bucket (tests/e2e/test_order_push.py::test_real_cost_bucket_is_respected).
ORDERS_PAGE_SIZE = 5
LINE_ITEMS_PAGE_SIZE = 13
SHIPPING_LINES_PAGE_SIZE = 5  # written into MerchantOrders as ``shippingLines(first: 5)``
LINE_ITEMS_FOLLOW_UP_PAGE = 100
VARIANT_SKU_BATCH = 25  # SKUs per productVariants search
VARIANTS_PAGE_SIZE = 50
ID_BATCH = ORDERS_PAGE_SIZE  # order ids per manual-run search
# tracking_sync: VendorOrderFulfillments costs about 2 + first x (1 + fulfillments x (1 + tracking + 3 +
# 2 x lineItems)); 5 x 5 x (5, 10) is about 730. An order whose fulfilments do not fit is re-read alone with
# VendorOrderFulfillmentsById (about 890); MerchantFulfillmentState about 640.
SHIPPED_ORDERS_PAGE_SIZE = 5
SHIPPED_FULFILLMENTS = 5
SHIPPED_TRACKING = 5
SHIPPED_LINES = 10
SHIPPED_ONE_FULFILLMENTS = 10
SHIPPED_ONE_LINES = 40
# MerchantOrderRefunds: one order's refunds; an order with more refunds, or a refund with more lines, is said
# unreadable (its refunds are then mirrored by hand).
REFUNDS_PAGE_SIZE = 8
REFUND_LINES = 14
REFUND_SHIPPING_LINES = 4
MERCHANT_FULFILLMENT_ORDERS = 5
MERCHANT_FO_LINES = 50
MERCHANT_FULFILLMENTS = 10
MERCHANT_TRACKING = 10


@cache
def document(name: str) -> str:
    """The text of ``graphql/<name>.graphql``: every document ordersync sends lives there."""
    return (GRAPHQL_DIR / f"{name}.graphql").read_text()


def search_value(value: str) -> str:
    """Quote a value for Shopify's search syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shopify_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
