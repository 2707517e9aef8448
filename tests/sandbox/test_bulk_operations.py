"""Bulk query operations of the sandbox Shopify store, over real HTTP, as the GraphQL Admin API 2026-10 runs
them: Shopify's bulk rules, flat JSONL with ``__parentId`` at ``url``, the lifecycle at the configured rate,
5 query operations at a time, cancel / fail / expire, and only the mutation and the polls are charged."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ordersync_sandbox import Sandbox
from ordersync_sandbox.cost import requested_cost
from ordersync_sandbox.shopify import ShopifyStore

TOKEN = "shpat_bulk"
ENDPOINT = "/admin/api/2026-10/graphql.json"

RUN = """
mutation RunBulk($query: String!, $group: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $group) {
    bulkOperation { id status objectCount url }
    userErrors { field message code }
  }
}
"""
POLL = """
query Poll($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query type
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) {
  bulkOperationCancel(id: $id) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""
ORDER_FIELDS = "id name email displayFinancialStatus tags totalPriceSet { shopMoney { amount currencyCode } }"
LINE_FIELDS = "id title quantity sku"
SEARCH = "tag:wholesale financial_status:paid"
BULK_ORDERS = (
    f'{{ orders(query: "{SEARCH}", sortKey: CREATED_AT, reverse: true) {{ edges {{ node {{ {ORDER_FIELDS} '
    f"lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }} }} }}"
)
PAGED_ORDERS = f"""
query Paged($after: String, $query: String) {{
  orders(first: 7, after: $after, query: $query, sortKey: CREATED_AT, reverse: true) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {ORDER_FIELDS} lineItems(first: 50) {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }}
  }}
}}
"""


class Client:
    """GraphQL over HTTP to one sandbox store, as an app would talk to Shopify."""

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store
        self.session = requests.Session()
        self.session.headers["X-Shopify-Access-Token"] = TOKEN

    def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.session.post(
            self.store.url + ENDPOINT, json={"query": query, "variables": variables or {}}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert "errors" not in body, body["errors"]
        return body

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.raw(query, variables)["data"]

    def run(self, query: str, group: bool = False) -> dict[str, Any]:
        return self.data(RUN, {"query": query, "group": group})["bulkOperationRunQuery"]

    def start(self, query: str = BULK_ORDERS, group: bool = False) -> str:
        payload = self.run(query, group)
        assert payload["userErrors"] == [], payload
        return payload["bulkOperation"]["id"]

    def poll(self, op_id: str) -> dict[str, Any]:
        return self.data(POLL, {"id": op_id})["bulkOperation"]

    def wait(self, op_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            op = self.poll(op_id)
            if op["status"] not in ("CREATED", "RUNNING", "CANCELING"):
                return op
            assert time.monotonic() < deadline, f"bulk operation still {op['status']}"
            time.sleep(0.02)

    def download(self, url: str) -> list[dict[str, Any]]:
        resp = requests.get(url)  # a signed URL: no access token, like Shopify's storage URLs
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"] == "application/jsonl"
        assert resp.text.endswith("\n")
        return [json.loads(line) for line in resp.text.splitlines()]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def store(sandbox: Sandbox) -> ShopifyStore:
    s = sandbox.add_shopify("bulk-merchant", token=TOKEN)
    s.bulk_start_delay = 0.0
    s.bulk_objects_per_second = 1e6  # most tests: done by the first poll
    return s


@pytest.fixture
def client(store: ShopifyStore) -> Iterator[Client]:
    c = Client(store)
    yield c
    c.session.close()


def seed(store: ShopifyStore, count: int = 24) -> None:
    """Orders of 0 to 3 lines; about half match SEARCH (wholesale and paid)."""
    for i in range(count):
        store.add_order(
            email=f"buyer{i}@example.com",
            tags=["wholesale"] if i % 3 else ["retail"],
            displayFinancialStatus="PAID" if i % 4 else "PENDING",
            lineItems=[
                {"title": f"Item {i}.{j}", "quantity": j + 1, "price": "4.50", "sku": f"SKU-{i}-{j}"}
                for j in range(i % 4)
            ],
        )


def paged_orders(client: Client, search: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.data(PAGED_ORDERS, {"after": after, "query": search})["orders"]
        for edge in page["edges"]:
            node = dict(edge["node"])
            node["lineItems"] = [e["node"] for e in node["lineItems"]["edges"]]
            out.append(node)
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def rebuild(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Orders by id with their line items, from flat JSONL (children may come before or after)."""
    parents = {line["id"]: {**line, "lineItems": []} for line in lines if "__parentId" not in line}
    for line in lines:
        if "__parentId" in line:
            child = {k: v for k, v in line.items() if k != "__parentId"}
            parents[line["__parentId"]]["lineItems"].append(child)
    return parents


# --- the file ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [False, True], ids=["ungrouped", "grouped"])
def test_bulk_orders_with_line_items_rebuild_to_the_paged_query(
    client: Client, store: ShopifyStore, group: bool
):
    seed(store)
    expected = paged_orders(client, SEARCH)
    assert 6 < len(expected) < 24 and any(o["lineItems"] for o in expected)

    op = client.wait(client.start(BULK_ORDERS, group=group))
    assert op["status"] == "COMPLETED" and op["errorCode"] is None and op["type"] == "QUERY"
    lines = client.download(op["url"])
    children = [line for line in lines if "__parentId" in line]

    assert rebuild(lines) == {o["id"]: o for o in expected}
    assert [line["id"] for line in lines if "__parentId" not in line] == [o["id"] for o in expected]
    assert all(list(line)[-1] == "__parentId" for line in children)  # Shopify writes it last
    assert op["objectCount"] == str(len(lines))
    assert op["rootObjectCount"] == str(len(expected))
    assert op["fileSize"] == str(len(requests.get(op["url"]).content))
    assert op["completedAt"] is not None and op["query"] == BULK_ORDERS

    if group:  # every parent directly followed by its children
        current = None
        for line in lines:
            if "__parentId" not in line:
                current = line["id"]
            else:
                assert line["__parentId"] == current
    else:  # every root first, then the children, the last parent's children first
        roots = len(expected)
        assert all("__parentId" not in line for line in lines[:roots])
        parent_order = [line["__parentId"] for line in lines[roots:]]
        with_lines = [o["id"] for o in expected if o["lineItems"]]
        assert list(dict.fromkeys(parent_order)) == list(reversed(with_lines))


def test_parent_ids_point_at_the_order_each_line_belongs_to(client: Client, store: ShopifyStore):
    seed(store, 12)
    lines = client.download(client.wait(client.start())["url"])
    children = [line for line in lines if "__parentId" in line]
    assert children
    root_ids = {line["id"] for line in lines if "__parentId" not in line}
    for child in children:
        assert child["__parentId"] in root_ids
        order = store.get_order(child["__parentId"])
        assert order is not None and child["id"] in [li["id"] for li in order["lineItems"]]
    assert len(children) == sum(len(store.get_order(i)["lineItems"]) for i in root_ids)


def test_nothing_matched_completes_with_no_url(client: Client, store: ShopifyStore):
    seed(store, 4)
    query = (
        '{ orders(query: "tag:no-such-tag") { edges { node { id lineItems { edges { node { id } } } } } } }'
    )
    op = client.wait(client.start(query))
    assert op["status"] == "COMPLETED"
    assert (op["objectCount"], op["rootObjectCount"], op["url"], op["fileSize"]) == ("0", "0", None, None)
    assert op["completedAt"] is not None


# --- the lifecycle -------------------------------------------------------------------------------------


def test_status_moves_created_running_completed_at_the_rate(client: Client, store: ShopifyStore):
    for i in range(5):
        store.add_order(lineItems=[{"title": f"L{i}", "quantity": 1, "price": "1.00"}])
    store.bulk_start_delay = 0.3
    store.bulk_objects_per_second = 10.0  # 10 objects: RUNNING for 1 s
    before = time.monotonic()
    op_id = client.start("{ orders { edges { node { id lineItems { edges { node { id } } } } } } }")
    after = time.monotonic()

    first = client.poll(op_id)
    assert (first["status"], first["objectCount"], first["url"]) == ("CREATED", "0", None)

    time.sleep(max(0.0, after + 0.55 - time.monotonic()))
    t0 = time.monotonic()
    mid = client.poll(op_id)
    t1 = time.monotonic()
    assert mid["status"] == "RUNNING" and mid["url"] is None and mid["completedAt"] is None
    low = math.floor((t0 - (after + 0.3)) * 10.0)
    high = math.floor((t1 - (before + 0.3)) * 10.0)
    assert 0 < low <= int(mid["objectCount"]) <= high < 10

    done = client.wait(op_id)
    finished = time.monotonic()
    assert done["status"] == "COMPLETED"
    assert (done["objectCount"], done["rootObjectCount"]) == ("10", "5")
    assert finished - before >= 0.3 + 10 / 10.0
    assert finished - after < 1.3 + 1.0


def test_a_sixth_concurrent_query_is_refused_until_one_ends(client: Client, store: ShopifyStore):
    store.bulk_start_delay = 60.0  # they stay CREATED
    ids = [client.start() for _ in range(5)]
    sixth = client.run(BULK_ORDERS)
    assert sixth["bulkOperation"] is None
    [error] = sixth["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS" and error["field"] is None
    assert error["message"].startswith(
        "A bulk query operation for this app and shop is already in progress: "
    )
    assert all(i in error["message"] for i in ids)
    assert len(store.list_bulk_operations()) == 5

    canceled = client.data(CANCEL, {"id": ids[0]})["bulkOperationCancel"]
    assert canceled == {"bulkOperation": {"id": ids[0], "status": "CANCELING"}, "userErrors": []}
    assert client.poll(ids[0])["status"] == "CANCELED"
    assert client.run(BULK_ORDERS)["bulkOperation"]["status"] == "CREATED"


def test_cancel(client: Client, store: ShopifyStore):
    seed(store, 6)
    store.bulk_start_delay = 60.0
    store.bulk_cancel_delay = 0.2
    op_id = client.start()
    assert client.data(CANCEL, {"id": op_id})["bulkOperationCancel"]["bulkOperation"]["status"] == "CANCELING"
    assert client.poll(op_id)["status"] == "CANCELING"
    assert len(client.store.list_bulk_operations()) == 1
    op = client.wait(op_id)
    assert (op["status"], op["url"], op["completedAt"], op["errorCode"]) == ("CANCELED", None, None, None)

    again = client.data(CANCEL, {"id": op_id})["bulkOperationCancel"]
    assert again["userErrors"] == [
        {"field": None, "message": "A bulk operation cannot be canceled when it is canceled"}
    ]
    unknown = client.data(CANCEL, {"id": "gid://shopify/BulkOperation/1"})["bulkOperationCancel"]
    assert unknown == {
        "bulkOperation": None,
        "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
    }


def test_failed_with_partial_data(client: Client, store: ShopifyStore):
    seed(store)
    complete = client.download(client.wait(client.start(group=True))["url"])
    resp = requests.post(
        store.url + "/_sandbox/bulk-operations/fail-next",
        json={"error_code": "TIMEOUT", "partial": True, "after_objects": 3},
    )
    assert resp.status_code == 200, resp.text

    op = client.wait(client.start(group=True))
    assert (op["status"], op["errorCode"], op["url"], op["fileSize"]) == ("FAILED", "TIMEOUT", None, None)
    assert op["objectCount"] == "3"
    partial = client.download(op["partialDataUrl"])
    assert partial == complete[:3]

    store.fail_next_bulk_operation("INTERNAL_SERVER_ERROR", partial=False)
    op = client.wait(client.start())
    assert (op["status"], op["errorCode"], op["partialDataUrl"], op["url"]) == (
        "FAILED",
        "INTERNAL_SERVER_ERROR",
        None,
        None,
    )
    with pytest.raises(ValueError):
        store.fail_next_bulk_operation("NOT_A_CODE")


def test_expired(client: Client, store: ShopifyStore):
    seed(store, 6)
    op = client.wait(client.start())
    url = op["url"]
    assert client.download(url)

    resp = requests.post(store.url + "/_sandbox/bulk-operations/expire", json={"id": op["id"]})
    assert resp.status_code == 200 and resp.json()["status"] == "EXPIRED"
    polled = client.poll(op["id"])
    assert (polled["status"], polled["url"]) == ("EXPIRED", None)
    gone = requests.get(url)
    assert gone.status_code == 400 and "ExpiredToken" in gone.text
    assert requests.get(store.url + "/bulk-operation-outputs/nope-final").status_code == 404

    settings = requests.post(store.url + "/_sandbox/bulk-operations/settings", json={"url_lifetime": 0.2})
    assert settings.json()["url_lifetime"] == 0.2
    op = client.wait(client.start())
    assert op["status"] == "COMPLETED"
    time.sleep(0.25)
    assert client.poll(op["id"])["status"] == "EXPIRED"


# --- polling ---------------------------------------------------------------------------------------------


def test_polling_by_node_bulk_operations_and_current_bulk_operation(client: Client, store: ShopifyStore):
    seed(store, 3)
    done = client.wait(client.start())["id"]
    store.bulk_start_delay = 60.0
    waiting = client.start()
    data = client.data(
        """
        query Ops($id: ID!) {
          node(id: $id) { id ... on BulkOperation { status } }
          created: bulkOperations(first: 10, query: "status:created") { nodes { id status } }
          all: bulkOperations(first: 10) { edges { node { id } } }
          oldestFirst: bulkOperations(first: 1, reverse: true) { nodes { id } }
          queries: bulkOperations(first: 10, query: "operation_type:mutation") { nodes { id } }
          currentBulkOperation(type: QUERY) { id status }
        }
        """,
        {"id": done},
    )
    assert data["node"] == {"id": done, "status": "COMPLETED"}
    assert data["created"]["nodes"] == [{"id": waiting, "status": "CREATED"}]
    assert [e["node"]["id"] for e in data["all"]["edges"]] == [waiting, done]  # newest first
    assert data["oldestFirst"]["nodes"] == [{"id": done}]
    assert data["queries"]["nodes"] == []
    assert data["currentBulkOperation"] == {"id": waiting, "status": "CREATED"}

    listed = requests.get(store.url + "/_sandbox/bulk-operations").json()
    assert [o["id"] for o in listed] == [done, waiting] == [o["id"] for o in store.list_bulk_operations()]
    assert not any(k.startswith("_") for o in listed for k in o)


def test_the_download_needs_no_token_and_is_logged(client: Client, store: ShopifyStore):
    seed(store, 3)
    url = client.wait(client.start())["url"]
    store.clear_log()
    assert client.download(url)
    [entry] = store.log()
    assert entry["operation"] == "bulk-operation-output" and entry["status"] == 200
    assert store.bulk_output(store.list_bulk_operations()[0]["id"]) == requests.get(url).content


# --- cost -----------------------------------------------------------------------------------------------


def test_only_the_mutation_and_the_polls_are_charged(client: Client, store: ShopifyStore):
    store.restore_rate = 0.0  # no refill: the bucket shows exactly what was charged
    start = store.available
    charged = []

    def run_and_poll() -> tuple[int, int]:
        body = client.raw(RUN, {"query": BULK_ORDERS, "group": False})
        mutation_cost = body["extensions"]["cost"]
        charged.append(mutation_cost["actualQueryCost"])
        op_id = body["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        poll = client.raw(POLL, {"id": op_id})
        assert poll["data"]["bulkOperation"]["status"] == "COMPLETED"
        charged.append(poll["extensions"]["cost"]["actualQueryCost"])
        return mutation_cost["requestedQueryCost"], poll["extensions"]["cost"]["requestedQueryCost"]

    empty = run_and_poll()
    seed(store, 60)
    full = run_and_poll()
    objects = int(store.list_bulk_operations()[-1]["objectCount"])
    assert objects > 60

    assert empty == full == (requested_cost(store.schema, RUN), requested_cost(store.schema, POLL)) == (12, 1)
    assert store.available == pytest.approx(start - sum(charged))
    assert sum(charged) < objects  # the objects themselves cost nothing


# --- invalid queries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ orders { edges { node { idd } } } }",
            "Invalid bulk query: Field 'idd' doesn't exist on type 'Order'",
        ),
        ("{ orders { edges { node { id }", "Invalid bulk query: Syntax Error"),
        ("", "Invalid bulk query: syntax error, unexpected end of file"),
        (
            'mutation { orderCancel(orderId: "gid://shopify/Order/1", reason: OTHER, refund: false, '
            "restock: false) { userErrors { message } } }",
            "Invalid operation type. Only `query` operations",
        ),
        ("{ shop { id name } }", "Bulk queries must contain at least one connection."),
        (
            '{ node(id: "gid://shopify/Order/1") { id } }',
            "Bulk queries cannot contain a top level `node` field.",
        ),
        (
            "{ orders { nodes { id } } }",
            "Selecting via 'nodes' is not supported. Invalid connection fields: 'orders'",
        ),
        (
            "{ orders { edges { node { id lineItems { edges { node { id } } } fulfillmentOrders { edges { node "
            "{ id lineItems { edges { node { id } } } } } } } } } }",
            "Bulk queries cannot contain connections with a nesting depth greater than 2.",
        ),
        (
            "{ orders { edges { node { id a: lineItems { edges { node { id } } } b: lineItems { edges { node { id } } }"
            " c: lineItems { edges { node { id } } } d: lineItems { edges { node { id } } }"
            " e: lineItems { edges { node { id } } } } } } }",
            "Bulk queries cannot contain more than 5 connections.",
        ),
        (
            "{ orders { edges { node { name lineItems { edges { node { id } } } } } } }",
            "The parent 'node' field for a nested connection must select the 'id' field without an alias",
        ),
        (
            "{ orders { edges { node { id fulfillments { fulfillmentLineItems { edges { node { id } } } } } } } }",
            "Queries that contain a connection field within a list field are not currently supported.",
        ),
    ],
    ids=[
        "unknown-field",
        "syntax",
        "empty",
        "mutation",
        "no-connection",
        "top-level-node",
        "via-nodes",
        "too-deep",
        "too-many",
        "parent-without-id",
        "connection-in-list",
    ],
)
def test_an_invalid_bulk_query_is_refused_with_user_errors(
    client: Client, store: ShopifyStore, query: str, message: str
):
    payload = client.run(query)
    assert payload["bulkOperation"] is None
    assert payload["userErrors"], payload
    assert all(e["field"] == ["query"] and e["code"] == "INVALID" for e in payload["userErrors"])
    assert any(e["message"].startswith(message) or message in e["message"] for e in payload["userErrors"])
    assert store.list_bulk_operations() == []
