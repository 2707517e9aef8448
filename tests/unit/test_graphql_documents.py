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
           "validated against the committed derived schema only")


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _derive_module():
    spec = importlib.util.spec_from_file_location("derive_shopify_schema", REPO / "tools" / "derive_shopify_schema.py")
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
    assert gzip.decompress(SCHEMA_FILE.read_bytes()) == expected, \
        "run: python tools/derive_shopify_schema.py"


def test_the_schema_check_bites():
    errors = validate_document("{ orders(first: 1) { nodes { financialStatus } } }")
    assert errors and "financialStatus" in errors[0]


def test_merchant_orders_page_size_is_affordable():
    doc = (REPO / "plugins" / "ordersync" / "platforms" / "graphql" / "MerchantOrders.graphql").read_text()
    schema = load_schema()
    assert requested_cost(schema, doc, {"first": 10, "lineItems": 25}) <= SINGLE_QUERY_MAX_COST
    # the calculator bites: a page this size would be refused with MAX_COST_EXCEEDED
    assert requested_cost(schema, doc, {"first": 50, "lineItems": 50}) > SINGLE_QUERY_MAX_COST


def test_merchant_orders_page_size_the_project_uses_is_affordable():
    """If the Shopify client defines its page sizes, the real page must fit the limit too."""
    try:
        from ordersync.platforms import shopify as client
    except ImportError:
        pytest.skip("ordersync.platforms.shopify is not importable here")
    first = getattr(client, "ORDERS_PAGE_SIZE", None)
    lines = getattr(client, "LINE_ITEMS_PAGE_SIZE", None)
    if not (isinstance(first, int) and isinstance(lines, int)):
        pytest.skip("ordersync.platforms.shopify defines no ORDERS_PAGE_SIZE / LINE_ITEMS_PAGE_SIZE")
    doc = (REPO / "plugins" / "ordersync" / "platforms" / "graphql" / "MerchantOrders.graphql").read_text()
    assert requested_cost(load_schema(), doc, {"first": first, "lineItems": lines}) <= SINGLE_QUERY_MAX_COST
