"""Refunds, tags and cancellations in the sandbox stores, over real HTTP on loopback: Shopify's ``tagsAdd``,
a merchant's refunds (``Order.refunds``), ``refundCreate`` with its required ``@idempotent`` key, and
WooCommerce's ``/orders/{id}/refunds`` routes."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import requests

from ordersync_sandbox import ShopifyStore, WooStore
from ordersync_sandbox.schema import validate_document

GRAPHQL = "/admin/api/2026-10/graphql.json"


@pytest.fixture
def shop(sandbox, receiver) -> ShopifyStore:
    store = sandbox.add_shopify("acme-merchant", token="shpat_t", webhook_secret="shpss_t")
    for topic in ("orders/updated", "orders/cancelled", "refunds/create"):
        store.subscribe(topic, receiver.url())
    return store


@pytest.fixture
def woo(sandbox, receiver) -> WooStore:
    store = sandbox.add_woo("bolt", key="ck_t", secret="cs_t", webhook_secret="woo_secret")
    store.webhook_timeout = 2.0
    store.subscribe("order.updated", receiver.url())
    receiver.clear()  # the activation ping
    return store


def gql(store: ShopifyStore, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One GraphQL request over HTTP; the whole payload (``data`` and maybe ``errors``)."""
    r = requests.post(
        f"{store.url}{GRAPHQL}",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": store.token},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def data(store: ShopifyStore, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = gql(store, query, variables)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def settle(store: Any) -> None:
    assert store.wait_for_deliveries(5.0)


def amount(bag: dict[str, Any]) -> Decimal:
    return Decimal(bag["shopMoney"]["amount"])


# --- GraphQL documents (each validated against the 2026-10 schema) ----------------------------------------

TAGS_ADD = """mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id ... on Order { tags updatedAt } }
    userErrors { field message }
  }
}"""

MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
REFUND_FIELDS = f"""id legacyResourceId createdAt updatedAt processedAt note
  totalRefundedSet {{ {MONEY} }}
  refundLineItems(first: 10) {{
    nodes {{ id lineItem {{ id sku }} quantity restockType restocked location {{ id name }}
      priceSet {{ {MONEY} }} subtotalSet {{ {MONEY} }} totalTaxSet {{ {MONEY} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
  refundShippingLines(first: 3) {{
    nodes {{ id shippingLine {{ id title }} subtotalAmountSet {{ {MONEY} }} taxAmountSet {{ {MONEY} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
  transactions(first: 2) {{ nodes {{ id kind status gateway amountSet {{ {MONEY} }} }} }}"""

ORDER_REFUNDS = f"""query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id updatedAt displayFinancialStatus displayFulfillmentStatus refundable
    totalRefundedSet {{ {MONEY} }} totalRefundedShippingSet {{ {MONEY} }} netPaymentSet {{ {MONEY} }}
    currentSubtotalPriceSet {{ {MONEY} }} currentShippingPriceSet {{ {MONEY} }}
    currentTotalTaxSet {{ {MONEY} }} currentTotalPriceSet {{ {MONEY} }}
    lineItems(first: 10) {{
      nodes {{ id sku quantity currentQuantity refundableQuantity unfulfilledQuantity nonFulfillableQuantity }}
    }}
    fulfillmentOrders(first: 2) {{
      nodes {{ id status lineItems(first: 10) {{ nodes {{ totalQuantity remainingQuantity lineItem {{ sku }} }} }} }}
    }}
    refunds(first: 3) {{ {REFUND_FIELDS} }}
  }}
}}"""

REFUND_CREATE = f"""mutation RefundCreate($input: RefundInput!, $key: String!) {{
  refundCreate(input: $input) @idempotent(key: $key) {{
    refund {{ {REFUND_FIELDS} }}
    order {{ id displayFinancialStatus lineItems(first: 10) {{ nodes {{ sku currentQuantity refundableQuantity
      unfulfilledQuantity }} }} }}
    userErrors {{ field message }}
  }}
}}"""

REFUND_CREATE_WITHOUT_KEY = """mutation RefundCreateWithoutKey($input: RefundInput!) {
  refundCreate(input: $input) { refund { id } userErrors { field message } }
}"""

DOCUMENTS = [TAGS_ADD, ORDER_REFUNDS, REFUND_CREATE, REFUND_CREATE_WITHOUT_KEY]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.split("(")[0].split()[-1])
def test_the_graphql_documents_validate_against_the_2026_10_schema(document):
    assert validate_document(document) == []


# --- orders to refund ---------------------------------------------------------------------------------------


def merchant_order(store: ShopifyStore) -> dict[str, Any]:
    """3 hammers at 24.00 with 7.20 tax, 2 saws at 10.00, 10% off everything; shipping 6.00 (0.60 tax) and
    4.00; one hammer fulfilled."""
    order = store.add_order(
        email="buyer@example.com",
        lineItems=[
            {
                "title": "Claw hammer",
                "sku": "HAMMER",
                "price": "24.00",
                "quantity": 3,
                "taxLines": [{"title": "VAT", "rate": 0.1, "price": "7.20"}],
            },
            {"title": "Saw", "sku": "SAW", "price": "10.00", "quantity": 2},
        ],
        discounts=[{"code": "TEN", "type": "percentage", "value": 10}],
        shippingLines=[
            {
                "title": "Standard",
                "price": "6.00",
                "taxLines": [{"title": "VAT", "rate": 0.1, "price": "0.60"}],
            },
            {"title": "Express", "price": "4.00"},
        ],
    )
    store.fulfill_order(order["id"], quantities={"HAMMER": 1})
    return order


def by_sku(order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {li["sku"]: li for li in order["lineItems"]["nodes"]}


# --- tagsAdd ------------------------------------------------------------------------------------------------


def test_tags_add_adds_what_is_missing_and_touches_the_order_only_on_a_change(shop, receiver):
    order = shop.add_order(lineItems=[{"title": "Hammer", "price": "5.00"}], tags=["vip"])
    settle(shop)
    receiver.clear()
    before = order["updatedAt"]

    result = data(shop, TAGS_ADD, {"id": order["id"], "tags": ["VIP", "ordersync-vendor-cancelled"]})[
        "tagsAdd"
    ]
    assert result["userErrors"] == []
    assert result["node"]["id"] == order["id"]
    assert result["node"]["tags"] == [
        "vip",
        "ordersync-vendor-cancelled",
    ]  # existing kept, compared caselessly
    assert result["node"]["updatedAt"] > before
    settle(shop)
    updates = receiver.of("orders/updated")
    assert len(updates) == 1 and "ordersync-vendor-cancelled" in updates[0]["tags"]

    receiver.clear()
    again = data(shop, TAGS_ADD, {"id": order["id"], "tags": ["ordersync-vendor-cancelled"]})["tagsAdd"]
    assert again["userErrors"] == [] and again["node"]["updatedAt"] == result["node"]["updatedAt"]
    settle(shop)
    assert receiver.of("orders/updated") == []  # nothing changed, nothing delivered

    comma = data(shop, TAGS_ADD, {"id": order["id"], "tags": ["a, b"]})["tagsAdd"]
    assert comma["node"]["tags"] == ["vip", "ordersync-vendor-cancelled", "a", "b"]


def test_tags_add_on_an_unknown_order_is_a_user_error(shop):
    result = data(shop, TAGS_ADD, {"id": "gid://shopify/Order/1", "tags": ["x"]})["tagsAdd"]
    assert result == {"node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}


def test_tags_add_is_a_write_that_faults_can_hit(shop):
    order = shop.add_order(lineItems=[{"title": "Hammer", "price": "5.00"}])
    shop.add_fault("tagsAdd", "http_error", status=503)
    r = requests.post(
        f"{shop.url}{GRAPHQL}",
        json={"query": TAGS_ADD, "variables": {"id": order["id"], "tags": ["x"]}},
        headers={"X-Shopify-Access-Token": shop.token},
        timeout=10,
    )
    assert r.status_code == 503
    assert shop.get_order(order["id"])["tags"] == []
    data(shop, TAGS_ADD, {"id": order["id"], "tags": ["x"]})
    entries = [e for e in shop.log() if e.get("operation") == "tagsAdd"]
    assert [e.get("fault") for e in entries] == ["http_error", None]
    assert [e["operation"] for e in shop.writes()] == ["tagsAdd"]


# --- a merchant's refunds (refund_order) --------------------------------------------------------------------


def test_a_merchant_refund_takes_units_off_the_lines_and_shares_out_discounts_taxes_and_shipping(
    shop, receiver
):
    order = merchant_order(shop)
    settle(shop)
    receiver.clear()
    before = shop.get_order(order["id"])["updatedAt"]

    refund = shop.refund_order(order["id"], quantities={"HAMMER": 3, "SAW": 1}, restock=True, shipping="5.00")

    got = data(shop, ORDER_REFUNDS, {"id": order["id"]})["order"]
    assert got["updatedAt"] > before
    lines = by_sku(got)
    # every refunded unit leaves currentQuantity and refundableQuantity; unfulfilled ones leave unfulfilledQuantity
    assert (lines["HAMMER"]["quantity"], lines["HAMMER"]["currentQuantity"]) == (3, 0)
    assert (lines["HAMMER"]["refundableQuantity"], lines["HAMMER"]["unfulfilledQuantity"]) == (0, 0)
    assert lines["HAMMER"]["nonFulfillableQuantity"] == 2
    assert (lines["SAW"]["currentQuantity"], lines["SAW"]["refundableQuantity"]) == (1, 1)
    assert lines["SAW"]["unfulfilledQuantity"] == 1
    [fo] = got["fulfillmentOrders"]["nodes"]
    assert fo["status"] == "IN_PROGRESS"
    assert {
        x["lineItem"]["sku"]: (x["totalQuantity"], x["remainingQuantity"]) for x in fo["lineItems"]["nodes"]
    } == {
        "HAMMER": (1, 0),
        "SAW": (1, 1),
    }

    [r] = got["refunds"]
    assert r["id"] == refund["id"] and r["legacyResourceId"] == refund["id"].rsplit("/", 1)[-1]
    rows = [
        (x["lineItem"]["sku"], x["quantity"], x["restockType"], x["restocked"], x["location"]["name"])
        for x in r["refundLineItems"]["nodes"]
    ]
    # restock: CANCEL for the two unfulfilled hammers, RETURN for the fulfilled one
    assert rows == [
        ("HAMMER", 2, "CANCEL", True, "Shop location"),
        ("HAMMER", 1, "RETURN", True, "Shop location"),
        ("SAW", 1, "CANCEL", True, "Shop location"),
    ]
    money = [
        (amount(x["priceSet"]), amount(x["subtotalSet"]), amount(x["totalTaxSet"]))
        for x in r["refundLineItems"]["nodes"]
    ]
    # subtotal after the 10% discount (21.60 a hammer); the tax share of 7.20 for the quantity
    assert money == [
        (Decimal("24.00"), Decimal("43.20"), Decimal("4.80")),
        (Decimal("24.00"), Decimal("21.60"), Decimal("2.40")),
        (Decimal("10.00"), Decimal("9.00"), Decimal("0.00")),
    ]
    assert r["refundLineItems"]["pageInfo"]["hasNextPage"] is False
    shipping = [
        (x["shippingLine"]["title"], amount(x["subtotalAmountSet"]), amount(x["taxAmountSet"]))
        for x in r["refundShippingLines"]["nodes"]
    ]
    assert shipping == [
        ("Standard", Decimal("3.00"), Decimal("0.30")),
        ("Express", Decimal("2.00"), Decimal("0")),
    ]
    # the suggested amount: lines after discounts, their taxes, the shipping and its tax
    total = Decimal("43.20") + Decimal("4.80") + Decimal("21.60") + Decimal("2.40") + Decimal("9.00")
    total += Decimal("5.00") + Decimal("0.30")
    assert amount(r["totalRefundedSet"]) == total
    [t] = r["transactions"]["nodes"]
    assert (t["kind"], t["status"], amount(t["amountSet"])) == ("REFUND", "SUCCESS", total)

    assert got["displayFinancialStatus"] == "PARTIALLY_REFUNDED" and got["refundable"] is True
    assert amount(got["totalRefundedSet"]) == total
    assert amount(got["totalRefundedShippingSet"]) == Decimal("5.00")
    assert amount(got["currentShippingPriceSet"]) == Decimal("5.00")
    assert amount(got["currentSubtotalPriceSet"]) == Decimal("9.00")
    assert amount(got["currentTotalTaxSet"]) == Decimal("0.30")
    assert amount(got["currentTotalPriceSet"]) == Decimal("14.30")
    assert amount(got["netPaymentSet"]) == Decimal("100.60") - total == Decimal("14.30")

    settle(shop)
    [created] = receiver.of("refunds/create")
    assert created["admin_graphql_api_id"] == refund["id"]
    assert [x["restock_type"] for x in created["refund_line_items"]] == ["cancel", "return", "cancel"]
    assert [x["total_tax"] for x in created["refund_line_items"]] == ["4.80", "2.40", "0.00"]
    assert len(created["refund_shipping_lines"]) == 2
    assert receiver.of("orders/updated")[-1]["financial_status"] == "partially_refunded"


def test_a_refund_without_restock_still_takes_the_units_off_the_order(shop):
    order = merchant_order(shop)
    shop.refund_order(order["id"], quantities={"SAW": 2})
    got = data(shop, ORDER_REFUNDS, {"id": order["id"]})["order"]
    saw = by_sku(got)["SAW"]
    assert (saw["currentQuantity"], saw["refundableQuantity"], saw["unfulfilledQuantity"]) == (0, 0, 0)
    [r] = got["refunds"]
    assert [(x["restockType"], x["restocked"], x["location"]) for x in r["refundLineItems"]["nodes"]] == [
        ("NO_RESTOCK", False, None)
    ]
    assert amount(r["totalRefundedSet"]) == Decimal("18.00")
    fo_lines = {
        x["lineItem"]["sku"]: x["remainingQuantity"]
        for x in got["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]
    }
    assert fo_lines["SAW"] == 0  # refunded units cannot be fulfilled any more


def test_refunding_everything_left_makes_the_order_refunded(shop):
    order = merchant_order(shop)
    shop.refund_order(order["id"], quantities={"HAMMER": 1}, restock_type="RETURN", amount="0")
    assert shop.get_order(order["id"])["displayFinancialStatus"] == "PAID"  # no money moved
    shop.refund_order(order["id"], note="goodwill")  # no lines: everything still refundable
    got = data(shop, ORDER_REFUNDS, {"id": order["id"]})["order"]
    assert got["displayFinancialStatus"] == "REFUNDED" and got["refundable"] is False
    assert amount(got["totalRefundedSet"]) == Decimal("100.60")
    assert [r["note"] for r in got["refunds"]] == [None, "goodwill"]
    assert amount(got["refunds"][0]["totalRefundedSet"]) == 0
    assert got["refunds"][0]["transactions"]["nodes"] == []
    with pytest.raises(ValueError, match="refundable"):
        shop.refund_order(order["id"], amount="1.00")


def test_refund_order_refuses_what_shopify_refuses(shop):
    order = merchant_order(shop)
    with pytest.raises(ValueError, match="CANCEL can only be used for unfulfilled"):
        shop.refund_order(order["id"], quantities={"HAMMER": 3}, restock_type="CANCEL")
    with pytest.raises(ValueError, match="more items than were purchased"):
        shop.refund_order(order["id"], quantities={"SAW": 3})
    with pytest.raises(ValueError, match="shipping amount"):
        shop.refund_order(order["id"], shipping="10.01")
    assert shop.get_order(order["id"])["refunds"] == []


def test_shipping_true_refunds_all_the_shipping_left(shop):
    order = merchant_order(shop)
    shop.refund_order(order["id"], shipping="1.00")
    refund = shop.refund_order(order["id"], shipping=True)
    assert [
        (x["subtotalAmountSet"]["shopMoney"]["amount"], x["taxAmountSet"]["shopMoney"]["amount"])
        for x in refund["refundShippingLines"]
    ] == [("5.40", "0.54"), ("3.60", "0.00")]
    got = data(shop, ORDER_REFUNDS, {"id": order["id"]})["order"]
    assert amount(got["totalRefundedShippingSet"]) == Decimal("10.00")
    assert amount(got["currentShippingPriceSet"]) == 0


# --- refundCreate on a vendor store -------------------------------------------------------------------------


def vendor_order(store: ShopifyStore) -> dict[str, Any]:
    order = store.add_order(
        lineItems=[{"title": "Claw hammer", "sku": "HAMMER", "price": "24.00", "quantity": 3}],
        shippingLines=[{"title": "Standard", "price": "6.00"}],
        sourceName="ordersync",
    )
    store.fulfill_order(order["id"], quantities={"HAMMER": 1})
    return order


def test_refund_create_requires_the_idempotent_directive(shop):
    order = vendor_order(shop)
    line = order["lineItems"][0]["id"]
    payload = gql(
        shop,
        REFUND_CREATE_WITHOUT_KEY,
        {"input": {"orderId": order["id"], "refundLineItems": [{"lineItemId": line, "quantity": 1}]}},
    )
    assert payload["data"] == {"refundCreate": None}
    [error] = payload["errors"]
    assert error["path"] == ["refundCreate"] and error["extensions"]["code"] == "BAD_REQUEST"
    assert "@idempotent" in error["message"]
    blank = gql(shop, REFUND_CREATE, {"input": {"orderId": order["id"]}, "key": "   "})
    assert blank["data"] == {"refundCreate": None} and "empty string" in blank["errors"][0]["message"]
    assert shop.get_order(order["id"])["refunds"] == []


def test_refund_create_records_a_refund_once_per_idempotency_key(shop, receiver):
    order = vendor_order(shop)
    settle(shop)
    receiver.clear()
    line = order["lineItems"][0]["id"]
    refund_input = {
        "orderId": order["id"],
        "note": "ordersync: merchant refund 123",
        "notify": False,
        "refundLineItems": [{"lineItemId": line, "quantity": 2, "restockType": "CANCEL"}],
        "shipping": {"fullRefund": True},
    }
    first = data(shop, REFUND_CREATE, {"input": refund_input, "key": "ordersync-refund-123"})["refundCreate"]
    assert first["userErrors"] == []
    refund = first["refund"]
    # no transactions: a refund that moves no money
    assert amount(refund["totalRefundedSet"]) == 0 and refund["transactions"]["nodes"] == []
    assert [
        (x["quantity"], x["restockType"], amount(x["subtotalSet"]))
        for x in refund["refundLineItems"]["nodes"]
    ] == [(2, "CANCEL", Decimal("48.00"))]
    assert [amount(x["subtotalAmountSet"]) for x in refund["refundShippingLines"]["nodes"]] == [
        Decimal("6.00")
    ]
    assert first["order"]["displayFinancialStatus"] == "PAID"
    [hammer] = first["order"]["lineItems"]["nodes"]
    assert (hammer["currentQuantity"], hammer["refundableQuantity"], hammer["unfulfilledQuantity"]) == (
        1,
        1,
        0,
    )
    settle(shop)
    assert receiver.of("refunds/create")[0]["admin_graphql_api_id"] == refund["id"]
    assert len(receiver.of("orders/updated")) == 1

    # the same key and input again: the same refund, nothing new, nothing delivered
    receiver.clear()
    again = data(shop, REFUND_CREATE, {"input": refund_input, "key": "ordersync-refund-123"})["refundCreate"]
    assert again["refund"]["id"] == refund["id"] and again["userErrors"] == []
    assert len(shop.get_order(order["id"])["refunds"]) == 1
    settle(shop)
    assert receiver.topics() == []

    # the same key with another input: refused, nothing recorded
    other = dict(refund_input, note="something else")
    payload = gql(shop, REFUND_CREATE, {"input": other, "key": "ordersync-refund-123"})
    assert payload["data"] == {"refundCreate": None}
    assert payload["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    assert len(shop.get_order(order["id"])["refunds"]) == 1

    # the vendor order's refunds are readable
    got = data(shop, ORDER_REFUNDS, {"id": order["id"]})["order"]
    assert [r["id"] for r in got["refunds"]] == [refund["id"]]
    assert got["refunds"][0]["note"] == "ordersync: merchant refund 123"


def test_refund_create_user_errors_carry_field_paths(shop):
    order = vendor_order(shop)
    line = order["lineItems"][0]["id"]
    bad = {
        "orderId": order["id"],
        "refundLineItems": [
            {"lineItemId": line, "quantity": 2, "restockType": "RETURN"},  # only 1 is fulfilled
            {"lineItemId": "gid://shopify/LineItem/1", "quantity": 1},
            {"lineItemId": line, "quantity": 4},
            {"lineItemId": line, "quantity": 1, "restockType": "LEGACY_RESTOCK"},
            {
                "lineItemId": line,
                "quantity": 1,
                "restockType": "CANCEL",
                "locationId": "gid://shopify/Location/1",
            },
        ],
        "shipping": {"amount": "6.01"},
    }
    result = data(shop, REFUND_CREATE, {"input": bad, "key": "k-bad"})["refundCreate"]
    assert result["refund"] is None and result["order"] is None
    assert [e["field"] for e in result["userErrors"]] == [
        ["refundLineItems", "0", "restockType"],
        ["refundLineItems", "1", "lineItemId"],
        ["refundLineItems", "2", "quantity"],
        ["refundLineItems", "3", "restockType"],
        ["refundLineItems", "4", "locationId"],
        ["shipping", "amount"],
    ]
    cancel_fulfilled = {
        "orderId": order["id"],
        "refundLineItems": [{"lineItemId": line, "quantity": 3, "restockType": "CANCEL"}],
    }
    errors = data(shop, REFUND_CREATE, {"input": cancel_fulfilled, "key": "k-cancel"})["refundCreate"][
        "userErrors"
    ]
    assert errors == [
        {
            "field": ["refundLineItems", "0", "restockType"],
            "message": "Restock type CANCEL can only be used for unfulfilled line items",
        }
    ]
    unknown = data(shop, REFUND_CREATE, {"input": {"orderId": "gid://shopify/Order/1"}, "key": "k-order"})
    assert unknown["refundCreate"]["userErrors"] == [
        {"field": ["orderId"], "message": "Order does not exist"}
    ]
    too_much = {
        "orderId": order["id"],
        "transactions": [{"orderId": order["id"], "amount": "80.00", "gateway": "manual", "kind": "REFUND"}],
    }
    errors = data(shop, REFUND_CREATE, {"input": too_much, "key": "k-much"})["refundCreate"]["userErrors"]
    assert [e["field"] for e in errors] == [["transactions"]]
    empty = data(shop, REFUND_CREATE, {"input": {"orderId": order["id"]}, "key": "k-empty"})["refundCreate"]
    assert empty["refund"] is None and len(empty["userErrors"]) == 1
    assert shop.get_order(order["id"])["refunds"] == []
    # a key whose request was refused is not used up
    ok = {"orderId": order["id"], "refundLineItems": [{"lineItemId": line, "quantity": 1}]}
    assert data(shop, REFUND_CREATE, {"input": ok, "key": "k-bad"})["refundCreate"]["userErrors"] == []


def test_refund_create_with_a_transaction_returns_money_and_restocks_returned_units(shop):
    order = vendor_order(shop)
    line = order["lineItems"][0]["id"]
    east = shop.add_location("East warehouse")
    refund_input = {
        "orderId": order["id"],
        "refundLineItems": [
            {"lineItemId": line, "quantity": 1, "restockType": "RETURN", "locationId": east["id"]}
        ],
        "transactions": [{"orderId": order["id"], "amount": "24.00", "gateway": "manual", "kind": "REFUND"}],
    }
    result = data(shop, REFUND_CREATE, {"input": refund_input, "key": "k-return"})["refundCreate"]
    assert result["userErrors"] == []
    [rli] = result["refund"]["refundLineItems"]["nodes"]
    assert (rli["restockType"], rli["restocked"], rli["location"]["name"]) == (
        "RETURN",
        True,
        "East warehouse",
    )
    assert amount(result["refund"]["totalRefundedSet"]) == Decimal("24.00")
    [t] = result["refund"]["transactions"]["nodes"]
    assert (t["kind"], t["gateway"], amount(t["amountSet"])) == ("REFUND", "manual", Decimal("24.00"))
    assert result["order"]["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    [hammer] = result["order"]["lineItems"]["nodes"]
    assert (hammer["currentQuantity"], hammer["refundableQuantity"], hammer["unfulfilledQuantity"]) == (
        2,
        2,
        2,
    )


def test_a_dropped_refund_create_answer_is_safe_to_retry_with_its_key(shop):
    order = vendor_order(shop)
    line = order["lineItems"][0]["id"]
    body = {
        "query": REFUND_CREATE,
        "variables": {
            "input": {"orderId": order["id"], "refundLineItems": [{"lineItemId": line, "quantity": 1}]},
            "key": "k-retry",
        },
    }
    shop.add_fault("refundCreate", "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(
            f"{shop.url}{GRAPHQL}", json=body, headers={"X-Shopify-Access-Token": shop.token}, timeout=10
        )
    [committed] = shop.get_order(order["id"])["refunds"]  # the store committed it; the client never heard
    retry = data(shop, body["query"], body["variables"])["refundCreate"]
    assert retry["refund"]["id"] == committed["id"]
    assert len(shop.get_order(order["id"])["refunds"]) == 1
    assert [e["operation"] for e in shop.writes()] == ["refundCreate", "refundCreate"]


def test_cancel_order_at_the_vendor_delivers_cancelled_and_updated(shop, receiver):
    order = shop.add_order(lineItems=[{"title": "Hammer", "sku": "HAMMER", "price": "5.00", "quantity": 2}])
    settle(shop)
    receiver.clear()
    shop.cancel_order(order["id"], reason="inventory", staff_note="out of stock")
    got = shop.get_order(order["id"])
    assert got["cancelledAt"] is not None and got["cancelReason"] == "INVENTORY"
    settle(shop)
    assert sorted(receiver.topics()) == ["orders/cancelled", "orders/updated"]
    assert receiver.of("orders/cancelled")[0]["cancel_reason"] == "inventory"


# --- WooCommerce refunds ------------------------------------------------------------------------------------


def woo_api(store: WooStore, path: str) -> str:
    return f"{store.url}/wp-json/wc/v3{path}"


@pytest.fixture
def woo_session(woo):
    session = requests.Session()
    session.auth = (woo.consumer_key, woo.consumer_secret)
    try:
        yield session
    finally:
        session.close()


def woo_order(store: WooStore, session: requests.Session, stock: int | None = 10) -> dict[str, Any]:
    product = store.add_product("Hex bolts M6 (100)", f"BOLT-M6-{len(store.products)}", "9.50")
    if stock is not None:
        store.set_stock(product["id"], stock)
    r = session.post(
        woo_api(store, "/orders"),
        json={
            "payment_method": "bacs",
            "set_paid": True,
            "line_items": [{"product_id": product["id"], "quantity": 3}],
            "shipping_lines": [{"method_id": "flat_rate", "method_title": "Flat rate", "total": "5.00"}],
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_woo_refund_of_line_items_computes_the_amount_restocks_and_lists_newest_first(
    woo, woo_session, receiver
):
    order = woo_order(woo, woo_session)
    product_id = order["line_items"][0]["product_id"]
    assert woo.get_order(order["id"])["line_items"][0]["meta_data"][0]["key"] == "_reduced_stock"
    assert next(p for p in woo.products if p["id"] == product_id)["stock_quantity"] == 7
    settle(woo)
    receiver.clear()
    line = order["line_items"][0]["id"]

    r = woo_session.post(
        woo_api(woo, f"/orders/{order['id']}/refunds"),
        json={
            "reason": "damaged",
            "api_refund": False,
            "meta_data": [{"key": "ordersync_refund", "value": "gid://shopify/Refund/1"}],
            "line_items": [{"id": line, "quantity": 1, "refund_total": 9.5, "refund_tax": []}],
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["amount"] == "9.50" and first["reason"] == "damaged" and first["refunded_payment"] is False
    assert first["refunded_by"] == 1 and first["id"] > order["id"]
    assert set(first) >= {
        "id",
        "date_created",
        "date_created_gmt",
        "meta_data",
        "line_items",
        "shipping_lines",
    }
    [item] = first["line_items"]
    assert (item["quantity"], item["subtotal"], item["total"], item["product_id"]) == (
        -1,
        "-9.50",
        "-9.50",
        product_id,
    )
    assert {"key": "_refunded_item_id", "value": str(line)}.items() <= item["meta_data"][0].items()
    assert [(m["key"], m["value"]) for m in first["meta_data"]] == [
        ("ordersync_refund", "gid://shopify/Refund/1")
    ]
    assert (
        next(p for p in woo.products if p["id"] == product_id)["stock_quantity"] == 8
    )  # api_restock default

    got = woo_session.get(woo_api(woo, f"/orders/{order['id']}"), timeout=10).json()
    assert got["refunds"] == [{"id": first["id"], "reason": "damaged", "total": "-9.50"}]
    assert got["status"] == "processing"
    settle(woo)
    assert [p["refunds"] for p in receiver.of("order.updated")][-1] == got["refunds"]

    # the rest: two bolts and the shipping line, without restocking
    shipping = order["shipping_lines"][0]["id"]
    r = woo_session.post(
        woo_api(woo, f"/orders/{order['id']}/refunds"),
        json={
            "api_refund": False,
            "api_restock": False,
            "line_items": [
                {"id": line, "quantity": 2, "refund_total": "19.00"},
                {"id": shipping, "refund_total": "5.00"},
            ],
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["amount"] == "24.00"
    assert [(x["method_id"], x["total"]) for x in second["shipping_lines"]] == [("flat_rate", "-5.00")]
    assert next(p for p in woo.products if p["id"] == product_id)["stock_quantity"] == 8
    got = woo_session.get(woo_api(woo, f"/orders/{order['id']}"), timeout=10).json()
    assert got["status"] == "refunded"  # nothing left to refund
    assert [x["id"] for x in got["refunds"]] == [second["id"], first["id"]]

    listed = woo_session.get(woo_api(woo, f"/orders/{order['id']}/refunds"), timeout=10)
    assert listed.status_code == 200 and listed.headers["X-WP-Total"] == "2"
    assert [x["id"] for x in listed.json()] == [second["id"], first["id"]]
    one = woo_session.get(woo_api(woo, f"/orders/{order['id']}/refunds/{first['id']}"), timeout=10)
    assert one.status_code == 200 and one.json() == first


def test_woo_refund_errors_are_woocommerces(woo, woo_session):
    order = woo_order(woo, woo_session, stock=None)
    refunds = woo_api(woo, f"/orders/{order['id']}/refunds")

    r = woo_session.post(refunds, json={"amount": "1.00"}, timeout=10)  # api_refund defaults to true
    assert r.status_code == 500
    assert r.json()["code"] == "woocommerce_rest_cannot_create_order_refund"
    assert r.json()["message"] == "The payment gateway for this order does not support automatic refunds."

    r = woo_session.post(refunds, json={"amount": "33.51", "api_refund": False}, timeout=10)
    assert (r.status_code, r.json()["message"]) == (500, "Invalid refund amount.")

    r = woo_session.post(refunds, json={"amount": "-1.00", "api_refund": False}, timeout=10)
    assert (r.status_code, r.json()["code"]) == (400, "woocommerce_rest_invalid_order_refund")

    r = woo_session.post(refunds, json={"amount": 5, "api_refund": False}, timeout=10)
    assert (r.status_code, r.json()["code"]) == (400, "rest_invalid_param")
    assert r.json()["data"]["params"] == {"amount": "amount is not of type string."}

    r = woo_session.post(woo_api(woo, "/orders/999999/refunds"), json={"amount": "1.00"}, timeout=10)
    assert (r.status_code, r.json()["code"]) == (404, "woocommerce_rest_invalid_order_id")
    assert woo.refunds(order["id"]) == [] and woo.get_order(order["id"])["refunds"] == []

    woo.refund_gateways.add("bacs")  # a gateway that refunds
    r = woo_session.post(refunds, json={"amount": "33.50"}, timeout=10)
    assert r.status_code == 201 and r.json()["refunded_payment"] is True
    assert woo.get_order(order["id"])["status"] == "refunded"


def test_woo_refund_read_and_delete(woo, woo_session):
    order = woo_order(woo, woo_session, stock=None)
    other = woo_order(woo, woo_session, stock=None)
    refund = woo.create_refund(order["id"], amount="2.00", api_refund=False, reason="late")
    path = f"/orders/{order['id']}/refunds/{refund['id']}"

    r = woo_session.get(woo_api(woo, f"/orders/{other['id']}/refunds/{refund['id']}"), timeout=10)
    assert (r.status_code, r.json()["code"]) == (404, "woocommerce_rest_invalid_order_refund_id")
    r = woo_session.get(woo_api(woo, f"/orders/{order['id']}/refunds/999999"), timeout=10)
    assert (r.status_code, r.json()["code"]) == (404, "woocommerce_rest_shop_order_refund_invalid_id")
    r = woo_session.delete(woo_api(woo, path), params={"force": "false"}, timeout=10)
    assert (r.status_code, r.json()["code"]) == (501, "woocommerce_rest_trash_not_supported")

    r = woo_session.delete(woo_api(woo, path), timeout=10)  # force defaults to true
    assert r.status_code == 200 and r.json()["id"] == refund["id"]
    assert woo_session.get(woo_api(woo, path), timeout=10).status_code == 404
    assert woo.get_order(order["id"])["refunds"] == []
    assert woo_session.get(woo_api(woo, f"/orders/{order['id']}/refunds"), timeout=10).json() == []


def test_woo_refund_routes_take_faults_like_post_orders(woo, woo_session):
    order = woo_order(woo, woo_session, stock=None)
    woo.add_fault("POST /orders/{id}/refunds", "http_error", status=503)
    r = woo_session.post(
        woo_api(woo, f"/orders/{order['id']}/refunds"),
        json={"amount": "1.00", "api_refund": False},
        timeout=10,
    )
    assert r.status_code == 503 and woo.refunds(order["id"]) == []

    woo.add_fault("POST /orders/{id}/refunds", "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        woo_session.post(
            woo_api(woo, f"/orders/{order['id']}/refunds"),
            json={"amount": "1.00", "api_refund": False},
            timeout=10,
        )
    assert len(woo.refunds(order["id"])) == 1  # committed, the answer lost
    writes = [e["operation"] for e in woo.writes()]
    assert writes[-1] == "POST /orders/{id}/refunds"

    woo.add_fault("GET /orders/{id}/refunds", "http_error", status=500)
    assert woo_session.get(woo_api(woo, f"/orders/{order['id']}/refunds"), timeout=10).status_code == 500


def test_woo_cancel_order_puts_stock_back_and_delivers_order_updated(woo, woo_session, receiver):
    order = woo_order(woo, woo_session)
    product_id = order["line_items"][0]["product_id"]
    woo.create_refund(
        order["id"],
        api_refund=False,
        line_items=[{"id": order["line_items"][0]["id"], "quantity": 1, "refund_total": "9.50"}],
    )
    assert next(p for p in woo.products if p["id"] == product_id)["stock_quantity"] == 8
    settle(woo)
    receiver.clear()
    cancelled = woo.cancel_order(order["id"])
    assert cancelled["status"] == "cancelled"
    assert (
        next(p for p in woo.products if p["id"] == product_id)["stock_quantity"] == 10
    )  # the 2 still reduced
    settle(woo)
    deadline = time.monotonic() + 5
    while not receiver.of("order.updated") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p["status"] for p in receiver.of("order.updated")] == ["cancelled"]
