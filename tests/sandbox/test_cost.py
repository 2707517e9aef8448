"""Shopify query cost as the sandbox computes it (ordersync_sandbox.cost).

The figures are the ones in ../shared/contracts/README.md and Shopify's documented rules:
object 1, scalar/enum 0, connection 2 + first x (1 + node selection), mutation 10.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync_sandbox.cost import actual_cost, requested_cost
from ordersync_sandbox.schema import load_schema

GRAPHQL_DIR = (
    Path(__file__).resolve().parents[2] / "plugins" / "ordersync" / "platforms" / "shopify" / "graphql"
)


@pytest.fixture(scope="module")
def schema():
    return load_schema()


def test_readme_example_orders_250_with_100_line_items_is_far_above_the_limit(schema):
    doc = "{ orders(first: 250) { nodes { lineItems(first: 100) { nodes { variant { id } } } } } }"
    # 2 + 250 x (1 + 2 + 100 x (1 + 1)) = 50,752: "about 50,000 points"
    assert requested_cost(schema, doc) == 50_752


@pytest.mark.parametrize(
    "doc",
    [
        "{ orders(first: 50) { nodes { lineItems(first: 20) { nodes { variant { id } } } } } }",
        "{ orders(first: 50) { edges { node { lineItems(first: 20) { edges { node { variant { id } } } } } } } }",
    ],
)
def test_readme_example_orders_50_line_items_20_costs_2152(schema, doc):
    # 2 + 50 x (1 order + 2 + 20 x (1 line item + 1 variant)) = 2 + 50 x 43
    assert requested_cost(schema, doc) == 2_152


def test_scalars_are_free_objects_cost_one(schema):
    assert requested_cost(schema, "{ shop { name id currencyCode } }") == 1
    assert (
        requested_cost(schema, '{ shop { name } order(id: "gid://shopify/Order/1") { id customer { id } } }')
        == 3
    )


def test_connection_uses_first_or_last_from_variables(schema):
    doc = "query Q($n: Int) { orders(first: $n) { nodes { id } } }"
    assert requested_cost(schema, doc, {"n": 10}) == 12
    assert requested_cost(schema, "{ orders(last: 7) { nodes { id } } }") == 9
    assert requested_cost(schema, "query Q($n: Int = 4) { orders(first: $n) { nodes { id } } }") == 6


def test_page_info_is_an_object_and_edges_nodes_count_once(schema):
    assert (
        requested_cost(schema, "{ orders(first: 5) { pageInfo { hasNextPage } nodes { id } } }") == 2 + 5 + 1
    )
    both = "{ orders(first: 5) { nodes { id } edges { cursor node { id customer { id } } } } }"
    assert requested_cost(schema, both) == 2 + 5 * 2


def test_plain_lists_of_objects_cost_like_one_element_times_first(schema):
    doc = (
        '{ order(id: "gid://shopify/Order/1") { customAttributes { key } '
        "fulfillments(first: 3) { trackingInfo { number } } } }"
    )
    # order 1 + customAttributes 1 + fulfillments 3 x (1 + trackingInfo 1)
    assert requested_cost(schema, doc) == 1 + 1 + 3 * 2


def test_fragments_are_expanded(schema):
    doc = """
    query { orders(first: 2) { nodes { ...O } } }
    fragment O on Order { id customer { ...C } shippingAddress { city } }
    fragment C on Customer { id defaultEmailAddress { emailAddress } }
    """
    assert requested_cost(schema, doc) == 2 + 2 * (1 + 2 + 1)


def test_skip_and_include_are_honoured(schema):
    doc = 'query Q($c: Boolean!) { shop { name } order(id: "gid://shopify/Order/1") @include(if: $c) { id } }'
    assert requested_cost(schema, doc, {"c": True}) == 2
    assert requested_cost(schema, doc, {"c": False}) == 1


def test_mutation_root_field_adds_ten(schema):
    doc = (GRAPHQL_DIR / "VendorOrderCreate.graphql").read_text()
    # 10 + order 1 + userErrors 1
    assert requested_cost(schema, doc, {"order": {}}) == 12
    update = 'mutation { orderUpdate(input: {id: "gid://shopify/Order/1"}) { userErrors { message } } }'
    assert requested_cost(schema, update) == 11


def test_abstract_types_take_the_dearest_possible_selection(schema):
    doc = """{ node(id: "gid://shopify/Order/1") {
        id
        ... on Order { customer { id } shippingAddress { id } }
        ... on ProductVariant { product { id } }
    } }"""
    assert requested_cost(schema, doc) == 1 + 2


def test_merchant_orders_page_fits_under_the_limit_and_a_bigger_one_does_not(schema):
    doc = (GRAPHQL_DIR / "MerchantOrders.graphql").read_text()
    from ordersync.platforms.shopify.documents import LINE_ITEMS_PAGE_SIZE, ORDERS_PAGE_SIZE

    assert requested_cost(schema, doc, {"first": ORDERS_PAGE_SIZE, "lineItems": LINE_ITEMS_PAGE_SIZE}) <= 1000
    assert requested_cost(schema, doc, {"first": 50, "lineItems": 50}) > 1000


def test_actual_cost_counts_what_was_returned(schema):
    doc = (
        "{ orders(first: 50) { pageInfo { hasNextPage } "
        "nodes { id lineItems(first: 20) { nodes { variant { id } } } } } }"
    )
    data = {
        "orders": {
            "pageInfo": {"hasNextPage": False},
            "nodes": [
                {"id": "a", "lineItems": {"nodes": [{"variant": None}, {"variant": {"id": "v"}}]}},
                {"id": "b", "lineItems": {"nodes": []}},
            ],
        }
    }
    # 2 + pageInfo 1 + order a (1 + 2 + 2 x 2) + order b (1 + 2)
    assert actual_cost(schema, doc, {}, None, data) == 2 + 1 + 7 + 3
    assert actual_cost(schema, doc, {}, None, {"orders": {"pageInfo": {}, "nodes": []}}) == 3
