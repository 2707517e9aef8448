"""The sandbox stores deliver webhooks as Shopify and WooCommerce do: subscriptions through the real APIs,
signed deliveries in the background, Shopify's retries, WooCommerce's failure count, faults and the log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import pytest
import requests

from ordersync_sandbox import Sandbox, ShopifyStore, WooStore
from ordersync_sandbox.schema import validate_document
from ordersync_sandbox.shopify_webhooks import COMPRESSED_RETRY_DELAYS, PRODUCTION_RETRY_DELAYS

GRAPHQL = "/admin/api/2026-10/graphql.json"
SHOP_SECRET = "shpss_test_secret"
WOO_SECRET = "woo_webhook_secret"


@pytest.fixture
def shop(sandbox) -> ShopifyStore:
    return sandbox.add_shopify("acme-vendor", token="shpat_t", webhook_secret=SHOP_SECRET)


@pytest.fixture
def woo(sandbox) -> WooStore:
    store = sandbox.add_woo("bolt", key="ck_t", secret="cs_t", webhook_secret=WOO_SECRET)
    store.webhook_timeout = 2.0
    store.add_product("Hex bolts M6 (100)", "BOLT-M6-100", "9.50")
    return store


def digest(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def gql(store: ShopifyStore, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One GraphQL request over HTTP; the ``data`` (asserting there are no errors)."""
    r = requests.post(
        f"{store.url}{GRAPHQL}",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": store.token},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    payload = r.json()
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def woo_api(store: WooStore, path: str) -> str:
    return f"{store.url}/wp-json/wc/v3{path}"


def line(sku: str = "ACME-HAMMER", quantity: int = 1, price: str = "24.00") -> dict[str, Any]:
    return {"title": "Claw hammer", "sku": sku, "vendor": "Acme Tools", "quantity": quantity, "price": price}


# --- GraphQL documents (each validated against the 2026-10 schema below) ---------------------------------

SUBSCRIPTION_FIELDS = """id legacyResourceId topic uri format includeFields filter name createdAt updatedAt
  apiVersion { handle } endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }"""
CREATE = f"""mutation Create($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {{
    webhookSubscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"""
UPDATE = f"""mutation Update($id: ID!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {{
    webhookSubscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"""
DELETE = """mutation Delete($id: ID!) { webhookSubscriptionDelete(id: $id) {
  deletedWebhookSubscriptionId userErrors { field message } } }"""
ONE = f"""query One($id: ID!) {{ webhookSubscription(id: $id) {{ {SUBSCRIPTION_FIELDS} }} }}"""
PAGE = """query Page($first: Int!, $after: String, $topics: [WebhookSubscriptionTopic!], $uri: String,
    $query: String) {
  webhookSubscriptions(first: $first, after: $after, topics: $topics, uri: $uri, query: $query) {
    edges { cursor node { id topic uri } } nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
COUNT = """query Count($query: String) { webhookSubscriptionsCount(query: $query) { count precision } }"""
ORDER_CREATE = """mutation OC($order: OrderCreateOrderInput!) { orderCreate(order: $order) {
  order { id name } userErrors { field message } } }"""
ORDER_UPDATE = """mutation OU($input: OrderInput!) { orderUpdate(input: $input) {
  order { id updatedAt } userErrors { field message } } }"""
TRACKING_UPDATE = """mutation TU($id: ID!, $info: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $info) {
    fulfillment { id } userErrors { field message } } }"""

DOCUMENTS = [CREATE, UPDATE, DELETE, ONE, PAGE, COUNT, ORDER_CREATE, ORDER_UPDATE, TRACKING_UPDATE]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.split("(")[0].split()[-1])
def test_the_graphql_documents_validate_against_the_2026_10_schema(document):
    assert validate_document(document) == []


# --- Shopify: subscriptions ----------------------------------------------------------------------------------


def test_shopify_subscription_create_read_update_delete(shop, receiver):
    url = receiver.url("/a")
    created = gql(shop, CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": url, "name": "ordersync"}})
    sub = created["webhookSubscriptionCreate"]["webhookSubscription"]
    assert created["webhookSubscriptionCreate"]["userErrors"] == []
    assert sub["id"].startswith("gid://shopify/WebhookSubscription/") and sub["legacyResourceId"] in sub["id"]
    assert (sub["topic"], sub["uri"], sub["format"], sub["name"]) == (
        "ORDERS_CREATE",
        url,
        "JSON",
        "ordersync",
    )
    assert sub["includeFields"] == [] and sub["filter"] is None and sub["apiVersion"] == {"handle": "2026-10"}
    assert sub["endpoint"] == {"__typename": "WebhookHttpEndpoint", "callbackUrl": url}

    taken = gql(shop, CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": url}})["webhookSubscriptionCreate"]
    assert taken["webhookSubscription"] is None
    assert taken["userErrors"] == [
        {"field": ["webhookSubscription", "uri"], "message": "Address for this topic has already been taken"}
    ]
    legacy = gql(shop, CREATE, {"topic": "ORDERS_PAID", "sub": {"callbackUrl": url}})[
        "webhookSubscriptionCreate"
    ]
    assert legacy["webhookSubscription"]["uri"] == url  # the deprecated input field still works
    bad = gql(shop, CREATE, {"topic": "ORDERS_PAID", "sub": {"uri": "ftp://example.com/x"}})
    assert bad["webhookSubscriptionCreate"]["userErrors"] == [
        {"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}
    ]

    assert gql(shop, ONE, {"id": sub["id"]})["webhookSubscription"] == sub
    new_url = receiver.url("/b")
    updated = gql(shop, UPDATE, {"id": sub["id"], "sub": {"uri": new_url, "includeFields": ["id", "name"]}})
    changed = updated["webhookSubscriptionUpdate"]["webhookSubscription"]
    assert (changed["uri"], changed["includeFields"], changed["name"]) == (
        new_url,
        ["id", "name"],
        "ordersync",
    )
    assert changed["updatedAt"] > sub["updatedAt"] and changed["createdAt"] == sub["createdAt"]

    deleted = gql(shop, DELETE, {"id": sub["id"]})["webhookSubscriptionDelete"]
    assert deleted == {"deletedWebhookSubscriptionId": sub["id"], "userErrors": []}
    assert gql(shop, ONE, {"id": sub["id"]})["webhookSubscription"] is None
    again = gql(shop, DELETE, {"id": sub["id"]})["webhookSubscriptionDelete"]
    assert again == {
        "deletedWebhookSubscriptionId": None,
        "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
    }
    assert [s["topic"] for s in shop.subscriptions()] == ["ORDERS_PAID"]


def test_shopify_webhook_subscriptions_page_and_filter(shop, receiver):
    topics = ["ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE"]
    for topic in topics:
        shop.subscribe(topic, receiver.url(f"/{topic.lower()}"))
    shop.subscribe("orders/create", receiver.url("/second"))

    seen, after, pages = [], None, 0
    while True:
        page = gql(shop, PAGE, {"first": 2, "after": after})["webhookSubscriptions"]
        pages += 1
        seen += [e["node"]["topic"] for e in page["edges"]]
        assert [n["id"] for n in page["nodes"]] == [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3 and seen == topics + ["ORDERS_CREATE"]

    by_topic = gql(shop, PAGE, {"first": 10, "topics": ["ORDERS_CREATE"]})["webhookSubscriptions"]["edges"]
    assert [e["node"]["uri"] for e in by_topic] == [receiver.url("/orders_create"), receiver.url("/second")]
    by_uri = gql(shop, PAGE, {"first": 10, "uri": receiver.url("/second")})["webhookSubscriptions"]["edges"]
    assert len(by_uri) == 1
    by_query = gql(shop, PAGE, {"first": 10, "query": "topic:fulfillments/update"})["webhookSubscriptions"]
    assert [e["node"]["topic"] for e in by_query["edges"]] == ["FULFILLMENTS_UPDATE"]
    assert gql(shop, COUNT)["webhookSubscriptionsCount"] == {"count": 6, "precision": "EXACT"}
    assert gql(shop, COUNT, {"query": "topic:ORDERS_CREATE"})["webhookSubscriptionsCount"]["count"] == 2


# --- Shopify: deliveries ------------------------------------------------------------------------------------


def test_shopify_delivery_is_signed_with_the_store_secret_and_carries_shopifys_headers(shop, receiver):
    shop.subscribe("orders/create", receiver.url(), name="ordersync-create")
    order = shop.add_order(
        name="#1001", email="ada@example.com", tags=["vip", "gift"], lineItems=[line(quantity=2)]
    )
    [got] = receiver.wait_for(1)

    assert got.headers["x-shopify-hmac-sha256"] == digest(SHOP_SECRET, got.body)
    assert got.headers["x-shopify-hmac-sha256"] != digest("another secret", got.body)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-shopify-topic"] == "orders/create"
    assert got.headers["x-shopify-shop-domain"] == shop.domain == "acme-vendor.myshopify.com"
    assert got.headers["x-shopify-api-version"] == "2026-10"
    assert got.headers["x-shopify-name"] == "ordersync-create"
    assert got.headers["x-shopify-triggered-at"].endswith("Z")
    assert len(got.headers["x-shopify-webhook-id"]) == 36 and len(got.headers["x-shopify-event-id"]) == 36

    payload = got.json()
    assert payload["id"] == int(order["legacyResourceId"]) and payload["admin_graphql_api_id"] == order["id"]
    assert (payload["name"], payload["financial_status"], payload["fulfillment_status"]) == (
        "#1001",
        "paid",
        None,
    )
    assert payload["email"] == "ada@example.com" and payload["tags"] == "vip, gift"
    assert payload["updated_at"] == order["updatedAt"].replace("Z", "+00:00")
    [item] = payload["line_items"]
    assert (item["sku"], item["quantity"], item["price"], item["vendor"]) == (
        "ACME-HAMMER",
        2,
        "24.00",
        "Acme Tools",
    )
    assert item["admin_graphql_api_id"] == order["lineItems"][0]["id"]
    assert payload["total_price"] == "48.00"

    assert shop.wait_for_deliveries(5)  # the log entry is written once the answer is in
    [entry] = shop.webhook_deliveries()
    assert (entry["topic"], entry["url"], entry["status"], entry["ok"], entry["attempt"]) == (
        "orders/create",
        receiver.url(),
        200,
        True,
        1,
    )
    assert entry["event_id"] == got.headers["x-shopify-event-id"] and entry["final"] is True
    assert entry["sent_at"] >= entry["queued_at"] and entry["duration"] >= 0


def test_one_action_shares_one_event_id_across_topics_and_each_delivery_has_its_own_webhook_id(
    shop, receiver
):
    for topic in ("orders/create", "orders/paid", "orders/updated"):
        shop.subscribe(topic, receiver.url(f"/{topic}"))
    order = shop.add_order(lineItems=[line()])  # created PAID
    got = receiver.wait_for(3)
    assert sorted(r.headers["x-shopify-topic"] for r in got) == [
        "orders/create",
        "orders/paid",
        "orders/updated",
    ]
    assert len({r.headers["x-shopify-event-id"] for r in got}) == 1
    assert len({r.headers["x-shopify-webhook-id"] for r in got}) == 3

    gql(shop, ORDER_UPDATE, {"input": {"id": order["id"], "note": "leave at the door"}})
    got = receiver.wait_for(4)
    assert (
        got[3].headers["x-shopify-topic"] == "orders/updated" and got[3].json()["note"] == "leave at the door"
    )
    assert got[3].headers["x-shopify-event-id"] != got[0].headers["x-shopify-event-id"]


def test_shopify_retries_failures_with_backoff_and_the_same_event_and_webhook_ids(shop, receiver):
    assert shop.webhook_retry_delays == COMPRESSED_RETRY_DELAYS and len(PRODUCTION_RETRY_DELAYS) == 8
    assert 4 * 3600 * 0.95 < sum(PRODUCTION_RETRY_DELAYS) < 4 * 3600 * 1.05
    shop.webhook_retry_delays = (0.1, 0.2)
    shop.subscribe("orders/create", receiver.url())
    receiver.answer(500, 503)
    shop.add_order(lineItems=[line()])
    first, second, third = receiver.wait_for(3)
    assert shop.wait_for_deliveries(5)

    assert first.body == second.body == third.body
    for name in (
        "x-shopify-event-id",
        "x-shopify-webhook-id",
        "x-shopify-hmac-sha256",
        "x-shopify-triggered-at",
    ):
        assert first.headers[name] == second.headers[name] == third.headers[name]
    assert second.at - first.at >= 0.1 and third.at - second.at >= 0.2
    log = shop.webhook_deliveries()
    assert [(e["attempt"], e["status"], e["ok"], e["final"]) for e in log] == [
        (1, 500, False, False),
        (2, 503, False, False),
        (3, 200, True, True),
    ]
    assert log[0]["next_attempt_at"] == pytest.approx(log[0]["finished_at"] + 0.1)
    assert len({e["delivery"] for e in log}) == 1 and len(shop.subscriptions()) == 1


def test_shopify_counts_a_timeout_or_a_redirect_as_a_failure_and_drops_a_subscription_that_keeps_failing(
    shop, receiver
):
    shop.webhook_timeout = 0.3
    shop.webhook_retry_delays = (0.05, 0.05)
    shop.subscribe("orders/create", receiver.url())
    receiver.answer(200, delay=1.0)  # answers after the timeout
    receiver.answer(302, 500)
    shop.add_order(lineItems=[line()])
    receiver.wait_for(3)
    assert shop.wait_for_deliveries(5)
    log = shop.webhook_deliveries()
    assert log[0]["status"] is None and log[0]["error"] == "timeout after 0.3 s"
    assert [e["status"] for e in log[1:]] == [302, 500]
    assert log[-1]["final"] and log[-1]["subscription_removed"] is True
    assert shop.subscriptions() == []
    shop.add_order(lineItems=[line()])
    assert shop.wait_for_deliveries(2) and len(shop.webhook_deliveries()) == 3  # nothing more is sent


def test_a_slow_receiver_never_blocks_the_request_that_caused_the_delivery(shop, receiver):
    shop.subscribe("orders/updated", receiver.url())
    order = shop.add_order(lineItems=[line()])
    receiver.wait_for(1)
    receiver.answer(200, delay=0.6)
    started = time.monotonic()
    gql(shop, ORDER_UPDATE, {"input": {"id": order["id"], "note": "slow"}})
    assert time.monotonic() - started < 0.4
    receiver.wait_for(2)
    assert shop.wait_for_deliveries(5)


def test_shopify_vendor_topics_order_create_fulfillments_and_cancel(shop, receiver):
    for topic in ("orders/create", "fulfillments/create", "fulfillments/update", "orders/cancelled"):
        shop.subscribe(topic, receiver.url(f"/{topic}"))
    created = gql(shop, ORDER_CREATE, {"order": {"lineItems": [{"title": "Claw hammer", "quantity": 2}]}})
    order = shop.get_order(created["orderCreate"]["order"]["id"])
    fulfillment = shop.fulfill_order(
        order["id"], quantities={order["lineItems"][0]["id"]: 1}, company="UPS", number="1Z1"
    )
    gql(
        shop,
        TRACKING_UPDATE,
        {"id": fulfillment["id"], "info": {"company": "UPS", "numbers": ["1Z1", "1Z2"]}},
    )
    shop.cancel_order(order["id"])
    assert shop.wait_for_deliveries(5)

    [create] = receiver.of_topic("orders/create")
    assert create.json()["admin_graphql_api_id"] == order["id"] and create.json()["source_name"] == "api"
    [made] = receiver.of_topic("fulfillments/create")
    payload = made.json()
    assert payload["admin_graphql_api_id"] == fulfillment["id"] and payload["id"] == int(
        fulfillment["legacyResourceId"]
    )
    assert payload["order_id"] == int(order["legacyResourceId"]) and payload["status"] == "success"
    assert (payload["tracking_company"], payload["tracking_number"], payload["tracking_numbers"]) == (
        "UPS",
        "1Z1",
        ["1Z1"],
    )
    assert [(li["title"], li["quantity"]) for li in payload["line_items"]] == [("Claw hammer", 1)]
    [update] = receiver.of_topic("fulfillments/update")
    assert update.json()["tracking_numbers"] == ["1Z1", "1Z2"] and update.json()["id"] == payload["id"]
    [cancelled] = receiver.of_topic("orders/cancelled")
    assert cancelled.json()["cancel_reason"] == "customer" and cancelled.json()["cancelled_at"] is not None


def test_shopify_merchant_topics_paid_edited_and_refunds(shop, receiver):
    for topic in ("orders/paid", "orders/edited", "refunds/create", "orders/updated"):
        shop.subscribe(topic, receiver.url(f"/{topic}"))
    order = shop.add_order(
        displayFinancialStatus="PENDING", lineItems=[line(quantity=2), line(sku="ACME-SAW-X")]
    )
    assert shop.wait_for_deliveries(5) and receiver.of_topic("orders/paid") == []
    shop.update_order(order["id"], displayFinancialStatus="PAID")
    assert shop.wait_for_deliveries(5)
    [paid] = receiver.of_topic("orders/paid")
    assert paid.json()["financial_status"] == "paid"

    hammer, saw = order["lineItems"]
    shop.update_order(
        order["id"],
        lineItems=[{**line(quantity=3), "id": hammer["id"]}],  # one more hammer, the saw removed
    )
    shop.refund_order(order["id"], quantities={hammer["id"]: 1}, note="damaged")
    assert shop.wait_for_deliveries(5)
    [edited] = receiver.of_topic("orders/edited")
    edit = edited.json()["order_edit"]
    assert edit["order_id"] == int(order["legacyResourceId"])
    assert edit["line_items"]["additions"] == [{"id": int(hammer["id"].rsplit("/", 1)[1]), "delta": 1}]
    assert edit["line_items"]["removals"] == [{"id": int(saw["id"].rsplit("/", 1)[1]), "delta": 1}]
    [refund] = receiver.of_topic("refunds/create")
    payload = refund.json()
    assert payload["order_id"] == int(order["legacyResourceId"]) and payload["note"] == "damaged"
    assert [(r["quantity"], r["subtotal"]) for r in payload["refund_line_items"]] == [(1, "24.00")]
    assert payload["transactions"][0]["kind"] == "refund" and payload["transactions"][0]["amount"] == "24.00"
    assert receiver.of_topic("orders/updated")[-1].json()["financial_status"] == "partially_refunded"
    assert order["refunds"][0]["id"] == payload["admin_graphql_api_id"]


# --- WooCommerce ----------------------------------------------------------------------------------------------


def test_woo_webhooks_crud_over_rest_with_the_activation_ping(woo, receiver):
    session = requests.Session()
    session.auth = ("ck_t", "cs_t")
    r = session.post(
        woo_api(woo, "/webhooks"),
        json={"name": "ordersync", "topic": "order.updated", "delivery_url": receiver.url(), "secret": "s1"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert "secret" not in hook and hook["status"] == "active" and hook["name"] == "ordersync"
    assert (hook["topic"], hook["resource"], hook["event"]) == ("order.updated", "order", "updated")
    assert "woocommerce_update_order" in hook["hooks"] and hook["delivery_url"] == receiver.url()
    assert r.headers["Location"].endswith(f"/wp-json/wc/v3/webhooks/{hook['id']}")
    # the ping came before the answer: unsigned, form-encoded webhook_id=N
    [ping] = receiver.received
    assert ping.body == f"webhook_id={hook['id']}".encode()
    assert ping.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "x-wc-webhook-signature" not in ping.headers and ping.headers["user-agent"].startswith(
        "WooCommerce/"
    )
    assert woo.get_webhook(hook["id"])["secret"] == "s1"

    for topic in ("order.created", "product.updated"):
        assert (
            session.post(
                woo_api(woo, "/webhooks"), json={"topic": topic, "delivery_url": receiver.url()}, timeout=10
            ).status_code
            == 201
        )
    listed = session.get(
        woo_api(woo, "/webhooks"), params={"per_page": 2, "orderby": "id", "order": "asc"}, timeout=10
    )
    assert [h["id"] for h in listed.json()] == [1, 2] and listed.headers["X-WP-Total"] == "3"
    assert listed.headers["X-WP-TotalPages"] == "2"
    assert session.get(woo_api(woo, "/webhooks/1"), timeout=10).json() == hook

    paused = session.put(woo_api(woo, "/webhooks/1"), json={"status": "paused"}, timeout=10).json()
    assert paused["status"] == "paused" and paused["id"] == 1
    only_paused = session.get(woo_api(woo, "/webhooks"), params={"status": "paused"}, timeout=10).json()
    assert [h["id"] for h in only_paused] == [1]

    bad = session.post(
        woo_api(woo, "/webhooks"), json={"topic": "order.shipped", "delivery_url": receiver.url()}, timeout=10
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "woocommerce_rest_shop_webhook_invalid_topic")
    missing = session.post(woo_api(woo, "/webhooks"), json={"topic": "order.created"}, timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (400, "rest_missing_callback_param")
    trash = session.delete(woo_api(woo, "/webhooks/1"), timeout=10)
    assert (trash.status_code, trash.json()["code"]) == (501, "woocommerce_rest_trash_not_supported")
    gone = session.delete(woo_api(woo, "/webhooks/1"), params={"force": "true"}, timeout=10)
    assert gone.status_code == 200 and gone.json()["id"] == 1
    unknown = session.get(woo_api(woo, "/webhooks/1"), timeout=10)
    assert (unknown.status_code, unknown.json()["code"]) == (400, "woocommerce_rest_shop_webhook_invalid_id")
    assert requests.get(woo_api(woo, "/webhooks"), timeout=10).status_code == 401
    session.close()


def test_woo_delivery_is_the_rest_order_signed_with_the_webhook_secret(woo, receiver):
    woo.subscribe("order.created", receiver.url("/created"))
    woo.subscribe("order.updated", receiver.url("/updated"), secret="own-secret")
    receiver.wait_for(2)  # the two pings
    order = woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 2}], billing={"email": "a@b.co"})
    woo.set_status(order["id"], "completed")
    assert woo.wait_for_deliveries(5)

    [created] = receiver.of_topic("order.created")
    [updated] = receiver.of_topic("order.updated")
    assert created.headers["x-wc-webhook-signature"] == digest(WOO_SECRET, created.body)
    assert updated.headers["x-wc-webhook-signature"] == digest("own-secret", updated.body)
    assert updated.headers["x-wc-webhook-signature"] != digest(WOO_SECRET, updated.body)
    assert created.headers["x-wc-webhook-source"] == f"{woo.url}/"
    assert (created.headers["x-wc-webhook-resource"], created.headers["x-wc-webhook-event"]) == (
        "order",
        "created",
    )
    assert created.headers["x-wc-webhook-id"] == "1" and updated.headers["x-wc-webhook-id"] == "2"
    assert created.headers["x-wc-webhook-delivery-id"] != updated.headers["x-wc-webhook-delivery-id"]
    assert created.headers["content-type"] == "application/json"
    assert b"\\/" in created.body  # PHP's json_encode escapes slashes
    rest = requests.get(woo_api(woo, f"/orders/{order['id']}"), auth=("ck_t", "cs_t"), timeout=10).json()
    assert updated.json() == rest and rest["status"] == "completed"
    # WooCommerce builds the payload when the queued delivery runs: the order as it is by then
    assert created.json() == rest
    statuses = [
        (e["kind"], e["topic"], e["status"], e.get("failure_count")) for e in woo.webhook_deliveries()
    ]
    assert statuses[2:] == [("event", "order.created", 200, 0), ("event", "order.updated", 200, 0)]


def test_woo_a_shipment_tracking_item_and_a_trashed_order_fire(woo, receiver):
    woo.subscribe("order.updated", receiver.url("/updated"))
    woo.subscribe("order.deleted", receiver.url("/deleted"))
    order = woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    woo.add_tracking(order["id"], "UPS", "1Z999")
    assert woo.wait_for_deliveries(5)
    [tracked] = receiver.of_topic("order.updated")
    meta = {m["key"]: m["value"] for m in tracked.json()["meta_data"]}
    assert meta["_wc_shipment_tracking_items"][0]["tracking_number"] == "1Z999"
    r = requests.delete(woo_api(woo, f"/orders/{order['id']}"), auth=("ck_t", "cs_t"), timeout=10)
    assert r.status_code == 200 and woo.wait_for_deliveries(5)
    [deleted] = receiver.of_topic("order.deleted")
    assert deleted.json() == {"id": order["id"]}


def test_woo_never_retries_and_disables_a_webhook_that_keeps_failing(woo, receiver):
    woo.subscribe("order.updated", receiver.url())
    receiver.wait_for(1)
    receiver.default = (500, 0.0)
    order = woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    counts = []
    for i in range(7):
        woo.update_order(order["id"], customer_note=f"change {i}")
        assert woo.wait_for_deliveries(5)
        counts.append((woo.get_webhook(1)["status"], woo.get_webhook(1)["failure_count"]))
    assert counts == [("active", n) for n in range(1, 7)] + [("disabled", 6)]
    events = [e for e in woo.webhook_deliveries() if e["kind"] == "event"]
    assert [e["attempt"] for e in events] == [1] * 7 and all(e["final"] for e in events)
    assert events[-1]["webhook_disabled"] is True
    woo.update_order(order["id"], customer_note="after")
    assert woo.wait_for_deliveries(2) and len(receiver.received) == 1 + 7  # a disabled webhook gets nothing


def test_woo_a_success_resets_the_failure_count_and_a_timeout_is_a_failure(woo, receiver):
    woo.webhook_timeout = 0.3
    woo.subscribe("order.updated", receiver.url())
    receiver.wait_for(1)
    order = woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    receiver.answer(404)
    receiver.answer(200, delay=1.0)
    for note in ("a", "b"):
        woo.update_order(order["id"], customer_note=note)
        assert woo.wait_for_deliveries(5)
    assert woo.get_webhook(1)["failure_count"] == 2
    assert woo.webhook_deliveries()[-1]["error"] == "timeout after 0.3 s"
    receiver.answer(301)  # WooCommerce counts 301 and 302 as delivered
    woo.update_order(order["id"], customer_note="c")
    assert woo.wait_for_deliveries(5) and woo.get_webhook(1)["failure_count"] == 0


def test_woo_changes_while_a_delivery_is_queued_make_one_delivery_built_when_sent(woo, receiver):
    woo.subscribe("order.updated", receiver.url())
    receiver.wait_for(1)
    order = woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    woo.pause_webhooks()
    woo.update_order(order["id"], customer_note="first")
    woo.update_order(order["id"], customer_note="second")
    assert woo.wait_for_deliveries(0.2) is False  # paused, one delivery queued
    woo.resume_webhooks()
    assert woo.wait_for_deliveries(5)
    [delivery] = receiver.of_topic("order.updated")
    assert delivery.json()["customer_note"] == "second"


# --- faults, pause, the log ------------------------------------------------------------------------------------


def test_fault_drop_never_delivers_and_never_retries(shop, receiver):
    shop.subscribe("orders/create", receiver.url())
    shop.add_webhook_fault("drop", topic="orders/create")
    shop.add_order(name="#1", lineItems=[line()])
    shop.add_order(name="#2", lineItems=[line()])
    [got] = receiver.wait_for(1)
    assert shop.wait_for_deliveries(5) and got.json()["name"] == "#2"
    first, second = shop.webhook_deliveries()
    assert (first["fault"], first["attempt"], first["status"], first["final"]) == ("drop", 0, None, True)
    assert second["ok"] and second["fault"] is None


def test_fault_duplicate_delivers_twice_with_the_same_ids(shop, receiver):
    shop.subscribe("orders/create", receiver.url())
    shop.add_webhook_fault("duplicate")
    shop.add_order(lineItems=[line()])
    one, two = receiver.wait_for(2)
    assert shop.wait_for_deliveries(5)
    assert one.body == two.body
    for name in ("x-shopify-event-id", "x-shopify-webhook-id", "x-shopify-hmac-sha256"):
        assert one.headers[name] == two.headers[name]
    log = shop.webhook_deliveries()
    assert [e["fault"] for e in log] == ["duplicate", "duplicate"] and log[1]["duplicate_of"] == log[0][
        "delivery"
    ]


def test_fault_duplicate_on_woocommerce_repeats_the_same_delivery(woo, receiver):
    woo.subscribe("order.created", receiver.url())
    receiver.wait_for(1)
    woo.add_webhook_fault("duplicate", topic="order.created")
    woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    _, one, two = receiver.wait_for(3)
    assert one.body == two.body
    for name in ("x-wc-webhook-delivery-id", "x-wc-webhook-signature"):
        assert one.headers[name] == two.headers[name]


def test_fault_delay_holds_one_delivery_while_later_ones_overtake_it(shop, receiver):
    shop.subscribe("orders/create", receiver.url())
    shop.add_webhook_fault("delay", delay=0.4)
    started = time.monotonic()
    shop.add_order(name="#late", lineItems=[line()])
    shop.add_order(name="#early", lineItems=[line()])
    got = receiver.wait_for(2)
    assert [r.json()["name"] for r in got] == ["#early", "#late"]
    assert got[1].at - started >= 0.4 and got[0].at - started < 0.4


def test_fault_reorder_releases_the_held_deliveries_in_reverse_or_shuffled(woo, receiver):
    woo.subscribe("order.created", receiver.url())
    receiver.wait_for(1)
    woo.add_webhook_fault("reorder", topic="order.created", times=3)
    ids = [woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])["id"] for _ in range(3)]
    got = receiver.wait_for(4)
    assert [r.json()["id"] for r in got[1:]] == list(reversed(ids))

    woo.add_webhook_fault("reorder", topic="order.created", times=-1, order="shuffle", seed=7)
    more = [woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])["id"] for _ in range(4)]
    assert woo.wait_for_deliveries(0.2) is False  # held until released
    assert woo.release_held_webhooks() == 4
    got = receiver.wait_for(8)
    assert sorted(r.json()["id"] for r in got[4:]) == more
    assert [r.json()["id"] for r in got[4:]] != more


def test_pause_holds_every_delivery_and_resume_sends_them(shop, receiver):
    shop.subscribe("orders/create", receiver.url())
    shop.pause_webhooks()
    shop.add_order(lineItems=[line()])
    shop.add_order(lineItems=[line()])
    assert shop.wait_for_deliveries(0.3) is False and receiver.received == []
    assert shop.webhooks.status()["queued"] == 2
    shop.resume_webhooks()
    assert len(receiver.wait_for(2)) == 2 and shop.wait_for_deliveries(5)


def test_the_control_endpoints(shop, woo, receiver):
    base = shop.url
    assert (
        requests.post(
            f"{base}/_sandbox/webhooks/subscribe",
            json={"topic": "orders/create", "url": receiver.url()},
            timeout=5,
        ).status_code
        == 201
    )
    fault = requests.post(
        f"{base}/_sandbox/webhooks/faults", json={"kind": "duplicate", "topic": "orders/create"}, timeout=5
    )
    assert fault.status_code == 201 and fault.json()["kind"] == "duplicate"
    assert [f["kind"] for f in requests.get(f"{base}/_sandbox/webhooks/faults", timeout=5).json()] == [
        "duplicate"
    ]
    bad = requests.post(f"{base}/_sandbox/webhooks/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400
    settings = requests.post(
        f"{base}/_sandbox/webhooks/settings", json={"retry_delays": [0.01], "timeout": 2}, timeout=5
    )
    assert (
        settings.json()["retry_delays"] == [0.01]
        and shop.webhook_retry_delays == (0.01,)
        and shop.webhook_timeout == 2.0
    )
    assert requests.post(f"{base}/_sandbox/webhooks/pause", timeout=5).json()["paused"] is True
    shop.add_order(lineItems=[line()])
    assert requests.post(f"{base}/_sandbox/webhooks/wait", json={"timeout": 0.2}, timeout=5).json() == {
        "idle": False
    }
    assert requests.post(f"{base}/_sandbox/webhooks/resume", timeout=5).json()["paused"] is False
    assert requests.post(f"{base}/_sandbox/webhooks/wait", json={"timeout": 5}, timeout=10).json() == {
        "idle": True
    }
    log = requests.get(f"{base}/_sandbox/webhook-deliveries", timeout=5).json()
    assert [(e["topic"], e["status"], e["fault"]) for e in log] == [("orders/create", 200, "duplicate")] * 2
    assert (
        requests.get(f"{base}/_sandbox/webhook-deliveries", params={"since": log[0]["seq"]}, timeout=5).json()
        == log[1:]
    )
    overview = requests.get(f"{base}/_sandbox/webhooks", timeout=5).json()
    assert [s["topic"] for s in overview["subscriptions"]] == ["ORDERS_CREATE"] and overview["status"][
        "queued"
    ] == 0
    assert (
        requests.delete(f"{base}/_sandbox/webhook-deliveries", timeout=5).json() == []
        and shop.webhook_deliveries() == []
    )

    hold = requests.post(
        f"{woo.url}/_sandbox/webhooks/faults",
        json={"kind": "reorder", "topic": "order.created", "times": -1},
        timeout=5,
    )
    assert hold.status_code == 201
    made = requests.post(
        f"{woo.url}/_sandbox/webhooks/subscribe",
        json={"topic": "order.created", "url": receiver.url("/w")},
        timeout=5,
    )
    assert made.status_code == 201 and "secret" not in made.json()
    woo.create_order(line_items=[{"sku": "BOLT-M6-100", "quantity": 1}])
    assert requests.post(f"{woo.url}/_sandbox/webhooks/release", timeout=5).json() == {"released": 1}
    assert woo.wait_for_deliveries(5) and woo.get_webhook(1)["secret"] == WOO_SECRET
    invalid = requests.post(
        f"{woo.url}/_sandbox/webhooks/subscribe",
        json={"topic": "order.nope", "url": receiver.url()},
        timeout=5,
    )
    assert (invalid.status_code, invalid.json()["code"]) == (
        400,
        "woocommerce_rest_shop_webhook_invalid_topic",
    )
    assert requests.get(f"{woo.url}/_sandbox/webhooks/settings", timeout=5).json()["max_failures"] == 5


def test_connection_env_carries_the_webhook_secret(sandbox):
    merchant = sandbox.add_shopify("merchant", token="shpat_m", webhook_secret="shpss_m")
    bolt = sandbox.add_woo("bolt", key="ck", secret="cs", webhook_secret="wh_bolt")
    plain = sandbox.add_woo("plain", key="ck2", secret="cs2")
    shop_conn = json.loads(sandbox.connection_env(merchant, "ordersync_merchant")[1])
    assert shop_conn["extra"] == {"api_version": "2026-10", "webhook_secret": "shpss_m"}
    assert shop_conn["password"] == "shpat_m"
    woo_conn = json.loads(sandbox.connection_env(bolt, "ordersync_vendor_bolt")[1])
    assert woo_conn["extra"] == {"webhook_secret": "wh_bolt"} and (
        woo_conn["login"],
        woo_conn["password"],
    ) == ("ck", "cs")
    assert "extra" not in json.loads(sandbox.connection_env(plain, "x")[1])


def test_stopping_the_sandbox_ends_the_delivery_thread_and_keeps_what_is_queued(receiver):
    sb = Sandbox()
    try:
        shop = sb.add_shopify("stopper", token="t", webhook_secret=SHOP_SECRET)
        shop.subscribe("orders/create", receiver.url())
        shop.add_order(lineItems=[line()])
        assert shop.wait_for_deliveries(5) and len(receiver.received) == 1
        shop.pause_webhooks()
        shop.add_order(lineItems=[line()])
        sb.stop()
        assert not any(t.name == "webhooks-stopper" and t.is_alive() for t in threading.enumerate())
        shop.resume_webhooks()  # a queued delivery starts the thread again
        assert shop.wait_for_deliveries(5) and len(receiver.received) == 2
    finally:
        sb.stop()
