"""The sandbox Shopify store behaves like the GraphQL Admin API 2026-10 for what ordersync uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordersync_sandbox.base import Request
from ordersync_sandbox.shopify import ShopifyStore

GRAPHQL_DIR = (
    Path(__file__).resolve().parents[2] / "plugins" / "ordersync" / "platforms" / "shopify" / "graphql"
)
ENDPOINT = "/admin/api/2026-10/graphql.json"
TOKEN = "shpat_test"
T0 = datetime(2026, 11, 27, 3, 40, tzinfo=UTC)


def doc(name: str) -> str:
    return (GRAPHQL_DIR / f"{name}.graphql").read_text()


class Clock:
    """A settable clock for timestamps (``store.now``) and the bucket (``store.clock``)."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> ShopifyStore:
    s = ShopifyStore("acme-vendor", TOKEN, locations=["Main warehouse", "East warehouse"])
    s.now = clock
    s.clock = lambda: clock.mono
    return s


def post(
    store: ShopifyStore, body: object, token: str | None = TOKEN, path: str = ENDPOINT, method: str = "POST"
):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Shopify-Access-Token"] = token
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = store.handle(Request.build(method, path, headers, raw))
    return resp.status, resp.payload(), resp


def gql(
    store: ShopifyStore, query: str, variables: dict | None = None, operation_name: str | None = None
) -> dict:
    status, payload, _ = post(
        store, {"query": query, "variables": variables or {}, "operationName": operation_name}
    )
    assert status == 200, payload
    return payload


def ok(
    store: ShopifyStore, query: str, variables: dict | None = None, operation_name: str | None = None
) -> dict:
    payload = gql(store, query, variables, operation_name)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def order_line(title="Hammer", sku="HAM-1", quantity=2, price="12.50", vendor="Acme Tools"):
    return {"title": title, "sku": sku, "quantity": quantity, "price": price, "vendor": vendor}


# --- HTTP surface --------------------------------------------------------------------------------


def test_wrong_or_missing_token_is_401(store):
    for token in ("nope", None):
        status, payload, _ = post(store, {"query": "{ shop { name } }"}, token=token)
        assert status == 401
        assert payload == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        }


def test_other_paths_and_versions_are_404(store):
    for path in ("/admin/api/2025-01/graphql.json", "/admin/api/2026-10/orders.json", "/graphql"):
        status, payload, _ = post(store, {"query": "{ shop { name } }"}, path=path)
        assert (status, payload) == (404, {"errors": "Not Found"})


def test_bad_json_and_missing_query_are_400(store):
    status, payload, _ = post(store, b"{not json")
    assert status == 400 and "errors" in payload
    status, payload, _ = post(store, {"variables": {}})
    assert status == 400 and payload == {"errors": {"query": "Required parameter missing or invalid"}}


def test_shop_and_cost_extensions(store):
    payload = gql(store, "{ shop { name currencyCode } }")
    assert payload["data"]["shop"] == {"name": "acme-vendor", "currencyCode": "USD"}
    cost = payload["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1 and cost["actualQueryCost"] == 1
    assert cost["throttleStatus"] == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1999.0,
        "restoreRate": 100.0,
    }


# --- validation, not implemented, cost limit ------------------------------------------------------


def test_invalid_document_is_answered_like_shopify_and_not_run(store):
    payload = gql(store, "query Q { orders(first: 1) { nodes { id financialStatus } } }")
    assert "data" not in payload
    [err] = payload["errors"]
    assert err["message"] == "Field 'financialStatus' doesn't exist on type 'Order'"
    assert err["locations"] == [{"line": 1, "column": 41}]
    assert err["path"] == ["query Q", "orders", "nodes", "financialStatus"]
    assert err["extensions"] == {
        "code": "undefinedField",
        "typeName": "Order",
        "fieldName": "financialStatus",
    }
    assert store.available == store.bucket_size  # nothing charged


def test_other_validation_and_syntax_errors(store):
    [err] = gql(store, "{ order { id } }")["errors"]
    assert err["extensions"]["code"] == "missingRequiredArguments"
    assert err["message"] == "Field 'order' is missing required arguments: id"
    [err] = gql(store, "{ orders(first: 1, bogus: 2) { nodes { id } } }")["errors"]
    assert err["message"] == "Field 'orders' doesn't accept argument 'bogus'"
    [err] = gql(store, "{ orders(first: 1) { nodes { id ")["errors"]
    assert err["locations"] and err["message"].startswith("Syntax Error")
    [err] = gql(store, "query Q($n: Int!) { orders(first: $n) { nodes { id } } }")["errors"]
    assert err["message"] == "Variable $n of type Int! was provided invalid value"
    assert err["extensions"]["code"] == "INVALID_VARIABLE"


def test_a_valid_root_field_the_sandbox_lacks_is_an_explicit_error(store):
    payload = gql(store, "{ customers(first: 1) { nodes { id } } shop { name } }")
    assert "data" not in payload
    [err] = payload["errors"]
    assert err["extensions"]["code"] == "NOT_IMPLEMENTED"
    assert "customers" in err["message"] and "not implemented by the ordersync sandbox" in err["message"]


def test_max_cost_exceeded(store):
    query = "{ orders(first: 250) { nodes { id lineItems(first: 100) { nodes { id variant { id } } } } } }"
    payload = gql(store, query)
    assert "data" not in payload
    [err] = payload["errors"]
    assert err["message"].startswith(
        "Query cost is 50752, which exceeds the single query max cost limit (1000)."
    )
    assert err["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 50752,
        "maxCost": 1000,
        "documentation": "https://shopify.dev/api/usage/rate-limits",
    }
    assert store.available == store.bucket_size


# --- the leaky bucket -----------------------------------------------------------------------------


def test_throttled_when_the_bucket_is_drained_and_recovers_after_restore(clock):
    store = ShopifyStore("tiny", TOKEN, bucket_size=100, restore_rate=50)
    store.now = clock
    store.clock = lambda: clock.mono
    for i in range(40):
        store.add_order(lineItems=[order_line(sku=f"S{i}")])
    query = "{ orders(first: 40) { nodes { id } } }"  # 42 points, all of it used
    for left in (58.0, 16.0):
        cost = gql(store, query)["extensions"]["cost"]
        assert cost["actualQueryCost"] == 42 and cost["throttleStatus"]["currentlyAvailable"] == left

    payload = gql(store, query)
    assert "data" not in payload
    assert payload["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert payload["extensions"]["cost"] == {
        "requestedQueryCost": 42,
        "actualQueryCost": None,
        "throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 16.0, "restoreRate": 50.0},
    }

    # a throttled mutation does not run (10 + order 1 + lineItems 2 + 50 + userErrors 1 = 64 > 16)
    before = len(store.orders)
    create = (
        'mutation { orderCreate(order: {lineItems: [{title: "X", quantity: 1}]}) '
        "{ order { lineItems(first: 50) { nodes { id } } } userErrors { message } } }"
    )
    payload = gql(store, create)
    assert payload["errors"][0]["extensions"]["code"] == "THROTTLED" and "data" not in payload
    assert len(store.orders) == before

    clock.advance(1.0)  # 16 + 50 points restored
    assert store.available == 66.0
    cost = gql(store, query)["extensions"]["cost"]
    assert cost["throttleStatus"]["currentlyAvailable"] == 66.0 - 42


def test_the_bucket_can_be_set_for_a_test(store, clock):
    store.bucket_size = 500.0
    store.available = 50.0
    assert (
        gql(store, "{ orders(first: 60) { nodes { id } } }")["errors"][0]["extensions"]["code"] == "THROTTLED"
    )
    clock.advance(2)
    assert store.available == 250.0
    clock.advance(60)
    assert store.available == 500.0


def test_unused_requested_cost_is_refunded(store):
    cost = gql(store, "{ orders(first: 100) { nodes { id } } }")["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (102, 2)
    assert cost["throttleStatus"]["currentlyAvailable"] == 1998.0


def test_throttled_and_error_responses_for_fault_injection(store):
    resp = store.throttled_response()
    payload = resp.payload()
    assert resp.status == 200 and payload["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert payload["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 2000.0
    resp = store.error_response(500)
    assert (resp.status, resp.payload()) == (500, {"errors": "Internal Server Error"})
    resp = store.error_response(429, type("F", (), {"retry_after": 3})())
    assert resp.status == 429 and resp.headers["Retry-After"] == "3.0" and "errors" in resp.payload()


# --- orders: pagination and search ----------------------------------------------------------------


def test_orders_pagination_with_cursors(store, clock):
    made = []
    for i in range(7):
        made.append(store.add_order(lineItems=[order_line(sku=f"S{i}")], email=f"b{i}@example.com"))
        clock.advance(60)
    seen, after, pages = [], None, 0
    while True:
        data = ok(
            store,
            "query P($after: String) { orders(first: 3, after: $after, sortKey: UPDATED_AT) "
            "{ pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { name } } } }",
            {"after": after},
        )["orders"]
        pages += 1
        seen += [e["node"]["name"] for e in data["edges"]]
        assert data["pageInfo"]["hasPreviousPage"] == (after is not None)
        assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == 3 and seen == [o["name"] for o in made]

    last = ok(store, "{ orders(last: 2, sortKey: UPDATED_AT) { nodes { name } pageInfo { startCursor } } }")[
        "orders"
    ]
    assert [n["name"] for n in last["nodes"]] == ["#1006", "#1007"]
    before = ok(
        store,
        "query B($c: String) { orders(last: 2, before: $c, sortKey: UPDATED_AT) { nodes { name } } }",
        {"c": last["pageInfo"]["startCursor"]},
    )["orders"]
    assert [n["name"] for n in before["nodes"]] == ["#1004", "#1005"]
    rev = ok(store, "{ orders(first: 2, reverse: true, sortKey: CREATED_AT) { nodes { name } } }")["orders"]
    assert [n["name"] for n in rev["nodes"]] == ["#1007", "#1006"]


def test_cursor_survives_an_order_moving_in_updated_at_order(store, clock):
    for i in range(4):
        store.add_order(lineItems=[order_line(sku=f"S{i}")])
        clock.advance(10)
    page1 = ok(store, "{ orders(first: 2, sortKey: UPDATED_AT) { pageInfo { endCursor } nodes { name } } }")[
        "orders"
    ]
    store.update_order("#1001", note="changed")  # moves to the end of the UPDATED_AT order
    page2 = ok(
        store,
        "query P($a: String) { orders(first: 5, after: $a, sortKey: UPDATED_AT) { nodes { name } } }",
        {"a": page1["pageInfo"]["endCursor"]},
    )["orders"]
    assert [n["name"] for n in page1["nodes"]] == ["#1001", "#1002"]
    assert [n["name"] for n in page2["nodes"]] == ["#1003", "#1004", "#1001"]


def test_connection_requires_first_or_last(store):
    payload = gql(store, "{ orders { nodes { id } } }")
    assert payload["errors"][0]["message"] == "you must provide one of first or last"


def names(store, query: str) -> list[str]:
    data = ok(
        store,
        "query S($q: String) { orders(first: 50, query: $q, sortKey: ID) { nodes { name } } }",
        {"q": query},
    )
    return [n["name"] for n in data["orders"]["nodes"]]


def test_order_search_filters(store, clock):
    a = store.add_order(
        lineItems=[order_line(sku="A-1")],
        tags=["wholesale", "vip"],
        email="ann@example.com",
        sourceIdentifier="ordersync:gid://shopify/Order/1:acme",
    )
    clock.advance(3600)
    b = store.add_order(lineItems=[order_line(sku="B-1")], tags=["retail"], displayFinancialStatus="PENDING")
    clock.advance(3600)
    c = store.add_order(lineItems=[order_line(sku="C-1")])
    store.cancel_order(c["id"])

    t1 = "2026-11-27T04:40:00Z"
    assert names(store, f"updated_at:>='{t1}'") == ["#1002", "#1003"]
    assert names(store, f"updated_at:<'{t1}'") == ["#1001"]
    assert names(store, f"updated_at:>='2026-11-27T03:00:00Z' updated_at:<='{t1}'") == ["#1001", "#1002"]
    assert names(store, "created_at:2026-11-27") == ["#1001", "#1002", "#1003"]
    assert names(store, f"id:{b['legacyResourceId']}") == ["#1002"]
    assert names(store, f"id:>={b['legacyResourceId']}") == ["#1002", "#1003"]
    assert names(store, f"id:{a['legacyResourceId']} OR id:{c['legacyResourceId']}") == ["#1001", "#1003"]
    assert (
        names(store, "name:#1002") == names(store, "name:1002") == names(store, 'name:"#1002"') == ["#1002"]
    )
    assert names(store, 'source_identifier:"ordersync:gid://shopify/Order/1:acme"') == ["#1001"]
    assert names(store, "source_identifier:'ordersync:gid://shopify/Order/999:acme'") == []
    assert names(store, "tag:vip") == ["#1001"]
    assert names(store, "tag_not:vip") == ["#1002", "#1003"]
    assert names(store, "-tag:wholesale AND NOT tag:retail") == ["#1003"]
    assert names(store, "(tag:vip OR tag:retail) financial_status:pending") == ["#1002"]
    assert names(store, "status:cancelled") == ["#1003"]
    assert names(store, "status:open") == ["#1001", "#1002"]
    assert names(store, "sku:B-1") == ["#1002"]
    assert names(store, "ann@example.com") == ["#1001"]


def test_unknown_search_fields_match_everything_with_a_warning(store):
    store.add_order(lineItems=[order_line()])
    payload = gql(store, '{ orders(first: 5, query: "colour:blue") { nodes { name } } }')
    assert [n["name"] for n in payload["data"]["orders"]["nodes"]] == ["#1001"]
    [note] = payload["extensions"]["search"]
    assert note["path"] == ["orders"] and note["warnings"] == [
        {"field": "colour", "message": "Invalid search field for this query."}
    ]


def test_order_by_id_and_invalid_gid(store):
    o = store.add_order(lineItems=[order_line()])
    data = ok(store, "query O($id: ID!) { order(id: $id) { id name legacyResourceId } }", {"id": o["id"]})
    assert data["order"] == {"id": o["id"], "name": "#1001", "legacyResourceId": o["legacyResourceId"]}
    assert ok(store, '{ order(id: "gid://shopify/Order/1") { id } }')["order"] is None
    payload = gql(store, '{ order(id: "1001") { id } }')
    assert payload["data"] == {"order": None} and "Invalid global id" in payload["errors"][0]["message"]
    assert (
        store.get_order(o["id"])
        is store.get_order(o["legacyResourceId"])
        is store.get_order("#1001")
        is store.get_order("1001")
        is o
    )


def test_add_order_accepts_a_graphql_shaped_customer(store):
    o = store.add_order(
        lineItems=[order_line()],
        customer={
            "firstName": "Bo",
            "lastName": "Ek",
            "defaultEmailAddress": {"emailAddress": "bo@example.com"},
            "defaultPhoneNumber": {"phoneNumber": "+15550101"},
        },
    )
    data = ok(
        store,
        "query O($id: ID!) { order(id: $id) { customer { id firstName defaultEmailAddress "
        "{ emailAddress } defaultPhoneNumber { phoneNumber } } } }",
        {"id": o["id"]},
    )
    customer = data["order"]["customer"]
    assert customer["id"].startswith("gid://shopify/Customer/") and customer["firstName"] == "Bo"
    assert customer["defaultEmailAddress"] == {"emailAddress": "bo@example.com"}
    assert customer["defaultPhoneNumber"] == {"phoneNumber": "+15550101"}


def test_merchant_orders_document_and_line_item_follow_up(store):
    lines = [order_line(title=f"Item {i}", sku=f"SKU-{i}", quantity=1) for i in range(30)]
    o = store.add_order(
        lineItems=lines,
        email="buyer@example.com",
        phone="+15550100",
        customer={"firstName": "Ann", "lastName": "Lee", "email": "buyer@example.com"},
        shippingAddress={
            "firstName": "Ann",
            "lastName": "Lee",
            "address1": "1 Main St",
            "city": "Springfield",
            "provinceCode": "IL",
            "zip": "62701",
            "countryCode": "US",
        },
        customAttributes=[{"key": "gift", "value": "yes"}],
        note="leave at door",
    )
    data = ok(store, doc("MerchantOrders"), {"first": 5, "lineItems": 13, "query": None}, "MerchantOrders")
    [node] = data["orders"]["nodes"]
    assert node["displayFinancialStatus"] == "PAID" and node["displayFulfillmentStatus"] == "UNFULFILLED"
    assert node["customer"]["defaultEmailAddress"] == {"emailAddress": "buyer@example.com"}
    assert node["shippingAddress"]["countryCodeV2"] == "US" and node["billingAddress"] is None
    assert node["customAttributes"] == [{"key": "gift", "value": "yes"}]
    assert len(node["lineItems"]["nodes"]) == 13 and node["lineItems"]["pageInfo"]["hasNextPage"]
    assert node["lineItems"]["nodes"][0]["originalUnitPriceSet"] == {
        "shopMoney": {"amount": "12.50", "currencyCode": "USD"}
    }
    more = ok(
        store,
        doc("MerchantOrderLineItems"),
        {"id": o["id"], "first": 100, "after": node["lineItems"]["pageInfo"]["endCursor"]},
    )
    rest = more["order"]["lineItems"]
    assert [n["sku"] for n in rest["nodes"]] == [f"SKU-{i}" for i in range(13, 30)]
    assert rest["pageInfo"]["hasNextPage"] is False


# --- catalog ----------------------------------------------------------------------------------------


def test_product_variants_by_sku_with_or(store):
    hammer = store.add_product("Hammer", sku="HAM-1", price="12.50")
    shirt = store.add_product(
        "Shirt",
        variants=[
            {"sku": "SH-S", "price": "20.00", "title": "S"},
            {"sku": "SH-M", "price": "21.00", "title": "M"},
        ],
    )
    store.add_product("Saw", sku="SAW-1")
    data = ok(
        store, doc("VendorVariantsBySku"), {"first": 50, "query": 'sku:"HAM-1" OR sku:"SH-M" OR sku:NOPE'}
    )
    nodes = data["productVariants"]["nodes"]
    assert {(n["sku"], n["product"]["id"]) for n in nodes} == {("HAM-1", hammer["id"]), ("SH-M", shirt["id"])}
    assert nodes[0]["id"] == hammer["variants"][0]["id"] and nodes[0]["id"].startswith(
        "gid://shopify/ProductVariant/"
    )
    by_product = ok(
        store,
        "query V($q: String) { productVariants(first: 10, query: $q) { nodes { sku } } }",
        {"q": f"product_id:{shirt['legacyResourceId']}"},
    )
    assert [n["sku"] for n in by_product["productVariants"]["nodes"]] == ["SH-S", "SH-M"]
    products = ok(
        store,
        '{ products(first: 10, query: "title:shirt") { nodes { title variants(first: 5) '
        "{ nodes { sku price } } } } }",
    )
    assert products["products"]["nodes"] == [
        {
            "title": "Shirt",
            "variants": {"nodes": [{"sku": "SH-S", "price": "20.00"}, {"sku": "SH-M", "price": "21.00"}]},
        }
    ]


def test_locations(store):
    data = ok(store, "{ locations(first: 5) { nodes { id name isActive } } }")
    assert [n["name"] for n in data["locations"]["nodes"]] == ["East warehouse", "Main warehouse"]


# --- orderCreate -----------------------------------------------------------------------------------


def create_input(variant_id: str) -> dict:
    return {
        "currency": "USD",
        "financialStatus": "PAID",
        "sourceIdentifier": "ordersync:#1001:acme",
        "sourceName": "ordersync",
        "email": "buyer@example.com",
        "phone": "+15550100",
        "note": "from merchant",
        "tags": ["ordersync", "merchant-#1001"],
        "customAttributes": [{"key": "ordersync_merchant_order", "value": "#1001"}],
        "customer": {"toUpsert": {"firstName": "Ann", "lastName": "Lee", "email": "buyer@example.com"}},
        "shippingAddress": {
            "firstName": "Ann",
            "lastName": "Lee",
            "address1": "1 Main St",
            "city": "Springfield",
            "provinceCode": "IL",
            "zip": "62701",
            "countryCode": "US",
            "phone": "+15550100",
        },
        "lineItems": [
            {
                "variantId": variant_id,
                "quantity": 2,
                "priceSet": {"shopMoney": {"amount": "11.00", "currencyCode": "USD"}},
            },
            {
                "title": "Custom engraving",
                "sku": "ENGRAVE",
                "quantity": 1,
                "requiresShipping": True,
                "priceSet": {"shopMoney": {"amount": "5", "currencyCode": "USD"}},
            },
        ],
    }


OPTIONS = {
    "sendReceipt": False,
    "sendFulfillmentReceipt": False,
    "inventoryBehaviour": "DECREMENT_OBEYING_POLICY",
}


def test_order_create_with_variant_and_custom_lines(store):
    product = store.add_product("Hammer", sku="HAM-1", price="12.50", vendor="Acme Tools")
    variant_id = product["variants"][0]["id"]
    payload = gql(store, doc("VendorOrderCreate"), {"order": create_input(variant_id), "options": OPTIONS})
    assert payload["extensions"]["cost"]["requestedQueryCost"] == 12
    result = payload["data"]["orderCreate"]
    assert result["userErrors"] == []
    assert (
        result["order"]["name"] == "#1001" and result["order"]["sourceIdentifier"] == "ordersync:#1001:acme"
    )

    order = store.get_order(result["order"]["id"])
    assert order["_options"] == OPTIONS
    assert order["displayFinancialStatus"] == "PAID" and order["sourceName"] == "ordersync"
    assert order["tags"] == ["ordersync", "merchant-#1001"]
    assert order["shippingAddress"]["name"] == "Ann Lee" and order["shippingAddress"]["countryCodeV2"] == "US"
    assert order["customer"]["email"] == "buyer@example.com"
    hammer, custom = order["lineItems"]
    assert (hammer["title"], hammer["sku"], hammer["vendor"], hammer["quantity"]) == (
        "Hammer",
        "HAM-1",
        "Acme Tools",
        2,
    )
    assert hammer["originalUnitPriceSet"]["shopMoney"]["amount"] == "11.00"
    assert hammer["variant"] == {"id": variant_id} and hammer["product"] == {"id": product["id"]}
    assert (custom["title"], custom["sku"], custom["originalUnitPriceSet"]["shopMoney"]["amount"]) == (
        "Custom engraving",
        "ENGRAVE",
        "5.00",
    )
    assert custom["variant"] is None
    assert order["totalPriceSet"]["shopMoney"]["amount"] == "27.00"
    [fo] = order["fulfillmentOrders"]
    assert fo["status"] == "OPEN" and fo["assignedLocation"]["location"]["id"] == store.locations[0]["id"]
    assert [(x["totalQuantity"], x["remainingQuantity"]) for x in fo["lineItems"]] == [(2, 2), (1, 1)]

    lines = ok(
        store,
        "query L($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes { sku variant { id } "
        "product { title } } } } }",
        {"id": order["id"]},
    )["order"]["lineItems"]["nodes"]
    assert lines[0]["variant"] == {"id": variant_id} and lines[0]["product"] == {"title": "Hammer"}
    assert lines[1]["variant"] is None
    found = ok(store, doc("VendorOrderBySource"), {"query": 'source_identifier:"ordersync:#1001:acme"'})
    assert found["orders"]["nodes"] == [
        {
            "id": order["id"],
            "name": "#1001",
            "sourceIdentifier": "ordersync:#1001:acme",
            "tags": order["tags"],
        }
    ]


def test_order_create_user_errors(store):
    bad = create_input("gid://shopify/ProductVariant/424242")
    result = ok(store, doc("VendorOrderCreate"), {"order": bad, "options": OPTIONS})["orderCreate"]
    assert result["order"] is None
    assert result["userErrors"] == [
        {
            "field": ["order", "lineItems", "0", "variantId"],
            "message": "Variant gid://shopify/ProductVariant/424242 does not exist",
            "code": "INVALID",
        }
    ]
    empty = dict(bad, lineItems=[])
    result = ok(store, doc("VendorOrderCreate"), {"order": empty})["orderCreate"]
    assert result["order"] is None and result["userErrors"][0]["field"] == ["order", "lineItems"]
    assert store.orders == []


def test_order_create_rejects_a_schema_invalid_input(store):
    payload = gql(store, doc("VendorOrderCreate"), {"order": {"lineItems": [{"quantity": "two"}]}})
    assert payload["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE" and store.orders == []


# --- fulfilment orders -----------------------------------------------------------------------------


def test_fulfillment_order_move(store):
    o = store.add_order(lineItems=[order_line()])
    east = store.locations[1]["id"]
    fos = ok(store, doc("VendorFulfillmentOrders"), {"id": o["id"]})["order"]["fulfillmentOrders"]["nodes"]
    assert [(f["status"], f["assignedLocation"]["location"]["id"]) for f in fos] == [
        ("OPEN", store.locations[0]["id"])
    ]
    moved = ok(store, doc("VendorFulfillmentOrderMove"), {"id": fos[0]["id"], "newLocationId": east})
    result = moved["fulfillmentOrderMove"]
    assert result["userErrors"] == []
    assert result["movedFulfillmentOrder"] == {
        "id": fos[0]["id"],
        "assignedLocation": {"location": {"id": east}},
    }
    again = ok(store, doc("VendorFulfillmentOrders"), {"id": o["id"]})["order"]["fulfillmentOrders"]["nodes"]
    assert again[0]["assignedLocation"]["location"]["id"] == east

    bad = ok(
        store,
        doc("VendorFulfillmentOrderMove"),
        {"id": fos[0]["id"], "newLocationId": "gid://shopify/Location/1"},
    )
    assert bad["fulfillmentOrderMove"]["movedFulfillmentOrder"] is None
    assert bad["fulfillmentOrderMove"]["userErrors"][0]["field"] == ["newLocationId"]


def test_moving_a_partly_fulfilled_fulfillment_order_splits_it(store):
    o = store.add_order(lineItems=[order_line(sku="X", quantity=3), order_line(sku="Y", quantity=1)])
    store.fulfill_order(o["id"], quantities={"X": 1})
    fo = o["fulfillmentOrders"][0]
    east = store.locations[1]["id"]
    result = ok(store, doc("VendorFulfillmentOrderMove"), {"id": fo["id"], "newLocationId": east})
    moved = result["fulfillmentOrderMove"]["movedFulfillmentOrder"]
    assert moved["id"] != fo["id"] and moved["assignedLocation"]["location"]["id"] == east
    assert fo["status"] == "CLOSED"
    assert [(x["totalQuantity"], x["remainingQuantity"]) for x in fo["lineItems"]] == [(1, 0)]
    [new] = [f for f in o["fulfillmentOrders"] if f["id"] == moved["id"]]
    assert [(x["sku"], x["remainingQuantity"]) for x in new["lineItems"]] == [("X", 2), ("Y", 1)]


# --- orderUpdate / orderCancel ----------------------------------------------------------------------


def test_order_update_overwrites_tags_and_bumps_updated_at(store):
    o = store.add_order(lineItems=[order_line()], tags=["a", "b"], note="old")
    before = o["updatedAt"]
    update = """mutation U($input: OrderInput!) { orderUpdate(input: $input) {
        order { id tags note email customAttributes { key value } shippingAddress { city } updatedAt }
        userErrors { field message } } }"""
    result = ok(
        store,
        update,
        {
            "input": {
                "id": o["id"],
                "tags": ["c"],
                "note": "new",
                "email": "x@example.com",
                "customAttributes": [{"key": "k", "value": "v"}],
                "shippingAddress": {"city": "Paris", "countryCode": "FR"},
            }
        },
    )["orderUpdate"]
    assert result["userErrors"] == []
    got = result["order"]
    assert got["tags"] == ["c"] and got["note"] == "new" and got["email"] == "x@example.com"
    assert got["customAttributes"] == [{"key": "k", "value": "v"}] and got["shippingAddress"] == {
        "city": "Paris"
    }
    assert got["updatedAt"] > before  # strictly later, even with a frozen clock
    result = ok(store, update, {"input": {"id": "gid://shopify/Order/1", "note": "x"}})["orderUpdate"]
    assert result["order"] is None and result["userErrors"][0]["field"] == ["id"]


def test_updated_at_strictly_increases_with_a_frozen_clock(store):
    o = store.add_order(lineItems=[order_line()])
    stamps = [o["updatedAt"]]
    for i in range(3):
        stamps.append(store.update_order(o["id"], note=str(i))["updatedAt"])
    assert stamps == sorted(set(stamps)) and stamps[0] == "2026-11-27T03:40:00Z"


CANCEL = """mutation C($id: ID!) { orderCancel(orderId: $id, reason: CUSTOMER, restock: true, refund: true,
    notifyCustomer: false, staffNote: "vendor asked") {
    job { id done } orderCancelUserErrors { field message code } } }"""


def test_order_cancel(store):
    o = store.add_order(lineItems=[order_line()])
    result = ok(store, CANCEL, {"id": o["id"]})["orderCancel"]
    assert result["orderCancelUserErrors"] == [] and result["job"]["id"].startswith("gid://shopify/Job/")
    assert o["cancelledAt"] == "2026-11-27T03:40:00Z" and o["cancelReason"] == "CUSTOMER"
    assert o["displayFinancialStatus"] == "REFUNDED"
    assert [fo["status"] for fo in o["fulfillmentOrders"]] == ["CLOSED"]
    assert o["_cancel"]["staffNote"] == "vendor asked" and o["lineItems"][0]["currentQuantity"] == 0
    job = ok(store, "query J($id: ID!) { job(id: $id) { id done } }", {"id": result["job"]["id"]})["job"]
    assert job["done"] is True

    again = ok(store, CANCEL, {"id": o["id"]})["orderCancel"]
    assert again["job"] is None and again["orderCancelUserErrors"][0]["code"] == "INVALID"
    missing = ok(store, CANCEL, {"id": "gid://shopify/Order/1"})["orderCancel"]
    assert missing["orderCancelUserErrors"][0]["code"] == "NOT_FOUND"


def test_a_fully_fulfilled_order_cannot_be_cancelled(store):
    o = store.add_order(lineItems=[order_line()])
    store.fulfill_order(o["id"])
    result = ok(store, CANCEL, {"id": o["id"]})["orderCancel"]
    assert result["job"] is None
    assert result["orderCancelUserErrors"] == [
        {"field": ["orderId"], "code": "INVALID", "message": "Cannot cancel an order that has been fulfilled"}
    ]
    assert o["cancelledAt"] is None


# --- fulfilments and tracking -----------------------------------------------------------------------

FO_LINES = """query F($id: ID!) { order(id: $id) { displayFulfillmentStatus
    fulfillmentOrders(first: 5) { nodes { id status lineItems(first: 10) { nodes { id remainingQuantity totalQuantity
    lineItem { sku } } } } } } }"""
CREATE_FULFILLMENT = """mutation FC($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f, message: "shipped") {
    fulfillment { id status name totalQuantity trackingInfo(first: 5) { company number url }
      fulfillmentLineItems(first: 5) { nodes { quantity lineItem { sku } } } }
    userErrors { field message } } }"""


def test_fulfillment_create_partial_then_full_and_tracking_update(store):
    o = store.add_order(lineItems=[order_line(sku="A", quantity=2), order_line(sku="B", quantity=1)])
    data = ok(store, FO_LINES, {"id": o["id"]})["order"]
    [fo] = data["fulfillmentOrders"]["nodes"]
    line_a, line_b = fo["lineItems"]["nodes"]

    first = ok(
        store,
        CREATE_FULFILLMENT,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fo["id"],
                        "fulfillmentOrderLineItems": [{"id": line_a["id"], "quantity": 1}],
                    }
                ],
                "trackingInfo": {"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"},
                "notifyCustomer": True,
            }
        },
    )["fulfillmentCreate"]
    assert first["userErrors"] == []
    f1 = first["fulfillment"]
    assert f1["status"] == "SUCCESS" and f1["totalQuantity"] == 1
    assert f1["trackingInfo"] == [{"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}]
    assert f1["fulfillmentLineItems"]["nodes"] == [{"quantity": 1, "lineItem": {"sku": "A"}}]
    data = ok(store, FO_LINES, {"id": o["id"]})["order"]
    assert data["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert data["fulfillmentOrders"]["nodes"][0]["status"] == "IN_PROGRESS"
    assert [n["remainingQuantity"] for n in data["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]] == [
        1,
        1,
    ]

    too_many = ok(
        store,
        CREATE_FULFILLMENT,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fo["id"],
                        "fulfillmentOrderLineItems": [{"id": line_a["id"], "quantity": 5}],
                    }
                ]
            }
        },
    )
    assert too_many["fulfillmentCreate"]["fulfillment"] is None
    assert (
        too_many["fulfillmentCreate"]["userErrors"][0]["message"]
        == "Invalid fulfillment order line item quantity requested."
    )

    rest = ok(
        store,
        CREATE_FULFILLMENT,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}],
                "trackingInfo": {"company": "DHL", "numbers": ["D1", "D2"]},
            }
        },
    )
    f2 = rest["fulfillmentCreate"]["fulfillment"]
    assert f2["totalQuantity"] == 2 and [t["number"] for t in f2["trackingInfo"]] == ["D1", "D2"]
    data = ok(store, FO_LINES, {"id": o["id"]})["order"]
    assert data["displayFulfillmentStatus"] == "FULFILLED"
    assert data["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    closed = ok(
        store, CREATE_FULFILLMENT, {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}}
    )
    assert "unfulfillable status" in closed["fulfillmentCreate"]["userErrors"][0]["message"]

    stamp = store.get_order(o["id"])["updatedAt"]
    update = """mutation T($id: ID!, $t: FulfillmentTrackingInput!) {
        fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $t, notifyCustomer: true) {
        fulfillment { id trackingInfo { company number url } } userErrors { field message } } }"""
    result = ok(
        store,
        update,
        {"id": f1["id"], "t": {"company": "FedEx", "number": "FX1", "url": "https://fedex.example/FX1"}},
    )
    assert result["fulfillmentTrackingInfoUpdate"]["userErrors"] == []
    assert result["fulfillmentTrackingInfoUpdate"]["fulfillment"]["trackingInfo"] == [
        {"company": "FedEx", "number": "FX1", "url": "https://fedex.example/FX1"}
    ]
    tracking = ok(
        store,
        "query O($id: ID!) { order(id: $id) { fulfillments(first: 5) { name "
        "trackingInfo { company number } } } }",
        {"id": o["id"]},
    )["order"]["fulfillments"]
    assert tracking == [
        {"name": "#1001-F1", "trackingInfo": [{"company": "FedEx", "number": "FX1"}]},
        {
            "name": "#1001-F2",
            "trackingInfo": [{"company": "DHL", "number": "D1"}, {"company": "DHL", "number": "D2"}],
        },
    ]
    assert store.get_order(o["id"])["updatedAt"] > stamp
    missing = ok(store, update, {"id": "gid://shopify/Fulfillment/1", "t": {"number": "x"}})
    assert missing["fulfillmentTrackingInfoUpdate"]["userErrors"][0]["field"] == ["fulfillmentId"]


# --- labels, state, real HTTP -----------------------------------------------------------------------


def request(body: dict) -> Request:
    return Request.build("POST", ENDPOINT, {"X-Shopify-Access-Token": TOKEN}, json.dumps(body).encode())


def test_operation_labels_and_writes(store):
    assert store.operation_of(request({"query": doc("MerchantOrders")})) == "orders"
    assert store.operation_of(request({"query": doc("VendorOrderCreate")})) == "orderCreate"
    assert store.is_write(request({"query": doc("VendorOrderCreate")})) is True
    assert store.is_write(request({"query": doc("VendorVariantsBySku")})) is False
    two = (
        'query A { shop { name } orders(first: 1) { nodes { id } } } mutation B { orderUpdate(input: {id: "x"}) '
        "{ userErrors { message } } }"
    )
    assert store.operation_of(request({"query": two, "operationName": "A"})) == "shop,orders"
    assert store.is_write(request({"query": two, "operationName": "B"})) is True
    assert store.operation_of(request({"query": "{ nope"})) == ""


def test_state_is_json_able(store):
    product = store.add_product("Hammer", sku="HAM-1")
    o = store.add_order(lineItems=[order_line()], customer={"firstName": "A", "email": "a@example.com"})
    store.fulfill_order(o["id"], company="UPS", number="1Z")
    state = json.loads(json.dumps(store.state()))
    assert state["orders"][0]["name"] == "#1001" and state["products"][0]["id"] == product["id"]
    assert [loc["name"] for loc in state["locations"]] == ["Main warehouse", "East warehouse"]


def test_over_real_http(store):
    requests = pytest.importorskip("requests")
    server_mod = pytest.importorskip("ordersync_sandbox.server")
    store.add_order(lineItems=[order_line()])
    server = server_mod.StoreServer(store).start()
    try:
        url = f"{store.url}{ENDPOINT}"
        resp = requests.post(
            url,
            json={
                "query": doc("MerchantOrders"),
                "operationName": "MerchantOrders",
                "variables": {"first": 5, "lineItems": 13},
            },
            headers={"X-Shopify-Access-Token": TOKEN},
            timeout=10,
        )
        assert resp.status_code == 200
        assert resp.json()["data"]["orders"]["nodes"][0]["name"] == "#1001"
        assert requests.post(url, json={"query": "{ shop { name } }"}, timeout=10).status_code == 401
    finally:
        server.stop()
    assert [e["operation"] for e in store.log()] == ["orders", "shop"]


def test_orders_count_uses_the_order_search_and_caps_at_limit(store):
    for status in ("PAID", "PAID", "PENDING"):
        store.add_order(displayFinancialStatus=status, lineItems=[order_line()])
    query = "query C($q: String, $limit: Int) { ordersCount(query: $q, limit: $limit) { count precision } }"
    assert ok(store, query, {"q": "financial_status:paid"})["ordersCount"] == {
        "count": 2,
        "precision": "EXACT",
    }
    assert ok(store, query, {"q": None, "limit": None})["ordersCount"] == {"count": 3, "precision": "EXACT"}
    assert ok(store, query, {"q": None, "limit": 2})["ordersCount"] == {"count": 2, "precision": "AT_LEAST"}
