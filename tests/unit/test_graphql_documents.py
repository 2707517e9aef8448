"""Every GraphQL document the project sends is valid for Shopify Admin 2026-10, and affordable.

The committed schema (sandbox/ordersync_sandbox/schema/, derived by
tools/derive_shopify_schema.py) is what the tests use; when the original contract
(../shared/contracts/ next to the repository) is present, the documents are also checked
against it and the committed copy is checked to be up to date.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest

from ordersync_sandbox.cost import requested_cost
from ordersync_sandbox.schema import SCHEMA_FILE, load_schema, validate_document

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "contracts" / "shopify-admin-2026-10.introspection.json.gz"
DOCUMENTS = sorted((REPO / "plugins").rglob("*.graphql"))
SINGLE_QUERY_MAX_COST = 1000
needs_contract = pytest.mark.skipif(
    not CONTRACT.exists(),
    reason=f"original Shopify introspection not available at {CONTRACT} (../shared is not next to the repo); "
    "validated against the committed derived schema only",
)


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _derive_module():
    spec = importlib.util.spec_from_file_location(
        "derive_shopify_schema", REPO / "tools" / "derive_shopify_schema.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_the_project_has_graphql_documents():
    names = {p.stem for p in DOCUMENTS}
    assert {"MerchantOrders", "VendorOrderCreate", "VendorVariantsBySku"} <= names


@pytest.mark.parametrize("path", DOCUMENTS, ids=_id)
def test_document_is_valid_against_the_committed_schema(path):
    assert validate_document(path.read_text(encoding="utf-8")) == []


@needs_contract
@pytest.mark.parametrize("path", DOCUMENTS, ids=_id)
def test_document_is_valid_against_the_original_introspection(path):
    schema = load_schema(CONTRACT)
    assert validate_document(path.read_text(encoding="utf-8"), schema) == []


@needs_contract
def test_committed_schema_is_up_to_date_with_the_derivation_script():
    expected = _derive_module().derive_json(CONTRACT)
    assert gzip.decompress(SCHEMA_FILE.read_bytes()) == expected, "run: python tools/derive_shopify_schema.py"


def test_the_schema_check_bites():
    errors = validate_document("{ orders(first: 1) { nodes { financialStatus } } }")
    assert errors and "financialStatus" in errors[0]


def test_merchant_orders_page_size_is_affordable():
    doc = (
        REPO / "plugins" / "ordersync" / "platforms" / "shopify" / "graphql" / "MerchantOrders.graphql"
    ).read_text()
    schema = load_schema()
    from ordersync.platforms.shopify.documents import LINE_ITEMS_PAGE_SIZE, ORDERS_PAGE_SIZE

    page = {"first": ORDERS_PAGE_SIZE, "lineItems": LINE_ITEMS_PAGE_SIZE}
    assert requested_cost(schema, doc, page) <= SINGLE_QUERY_MAX_COST
    # the calculator bites: a page this size would be refused with MAX_COST_EXCEEDED
    assert requested_cost(schema, doc, {"first": 50, "lineItems": 50}) > SINGLE_QUERY_MAX_COST


def test_every_document_is_affordable_at_the_sizes_the_client_uses():
    """Each document, with the page sizes the Shopify client really sends, stays under the single-query limit."""
    from ordersync.platforms.shopify import documents as client
    from ordersync.platforms.shopify import webhooks

    sizes = {
        "MerchantOrders": {"first": client.ORDERS_PAGE_SIZE, "lineItems": client.LINE_ITEMS_PAGE_SIZE},
        "MerchantOrderLineItems": {"id": "gid://shopify/Order/1", "first": client.LINE_ITEMS_FOLLOW_UP_PAGE},
        "VendorVariantsBySku": {"first": client.VARIANTS_PAGE_SIZE, "query": "sku:A"},
        "VendorOrderBySource": {"query": "source_identifier:x"},
        "VendorOrderCreate": {"order": {}},
        "VendorFulfillmentOrders": {"id": "gid://shopify/Order/1"},
        "VendorFulfillmentOrderMove": {"id": "x", "newLocationId": "y"},
        "VendorOrderUpdate": {"input": {"id": "x"}},
        "VendorOrderStatus": {"id": "x"},
        "VendorOrderCancel": {"orderId": "x", "reason": "OTHER"},
        # tracking_sync
        "VendorOrderFulfillments": {
            "first": client.SHIPPED_ORDERS_PAGE_SIZE,
            "query": "updated_at:>='x'",
            "fulfillments": client.SHIPPED_FULFILLMENTS,
            "tracking": client.SHIPPED_TRACKING,
            "lineItems": client.SHIPPED_LINES,
        },
        "VendorOrderFulfillmentsById": {
            "id": "gid://shopify/Order/1",
            "fulfillments": client.SHIPPED_ONE_FULFILLMENTS,
            "tracking": client.SHIPPED_TRACKING,
            "lineItems": client.SHIPPED_ONE_LINES,
        },
        "MerchantFulfillmentState": {
            "id": "gid://shopify/Order/1",
            "fulfillmentOrders": client.MERCHANT_FULFILLMENT_ORDERS,
            "lineItems": client.MERCHANT_FO_LINES,
            "fulfillments": client.MERCHANT_FULFILLMENTS,
            "tracking": client.MERCHANT_TRACKING,
        },
        # order_sync's backlog read (bulk.py): the inner bulk query is priced as a normal query would be
        # (Shopify neither checks nor charges it in a bulk operation)
        "MerchantOrdersCount": {"query": "updated_at:>='x'", "limit": None},
        "MerchantOrdersBulk": {"query": "updated_at:>='x'"},
        "MerchantBulkRun": {"query": "{ orders { edges { node { id } } } }"},
        "MerchantBulkOperation": {"id": "gid://shopify/BulkOperation/1"},
        "MerchantBulkCancel": {"id": "gid://shopify/BulkOperation/1"},
        "MerchantFulfillmentCreate": {"fulfillment": {}},
        "MerchantFulfillmentTrackingUpdate": {"fulfillmentId": "x", "trackingInfoInput": {}},
        "MerchantTagsAdd": {"id": "x", "tags": ["ordersync-vendor-cancelled"]},
        # refunds after the push
        "MerchantOrderRefunds": {
            "id": "gid://shopify/Order/1",
            "refunds": client.REFUNDS_PAGE_SIZE,
            "lines": client.REFUND_LINES,
            "shipping": client.REFUND_SHIPPING_LINES,
        },
        "VendorOrderRefunds": {"id": "gid://shopify/Order/1"},
        "VendorRefundCreate": {"input": {"orderId": "x"}, "key": "ordersync-refund-row-1"},
        # ordersync_webhooks
        "WebhookSubscriptions": {"first": webhooks.PAGE_SIZE},
        "WebhookSubscriptionCreate": {"topic": "ORDERS_CREATE", "uri": "https://x/ordersync/webhooks/y"},
        "WebhookSubscriptionUpdate": {"id": "x", "uri": "https://x/ordersync/webhooks/y"},
    }
    assert set(sizes) == {p.stem for p in DOCUMENTS}, "a new document needs its sizes here"
    schema = load_schema()
    for path in DOCUMENTS:
        cost = requested_cost(schema, path.read_text(), sizes[path.stem])
        assert 0 < cost <= SINGLE_QUERY_MAX_COST, f"{path.stem} costs {cost}"
