"""A large backlog is read with one Shopify bulk operation (issue 14), through Airflow's dag.test against the
sandbox stores over real HTTP, with the bulk threshold forced to 3 (``ORDERSYNC_BULK_THRESHOLD``).

The bulk read pushes exactly what the paged read pushes on an identical store (an order with 30 lines comes
whole), and the watermark moves to the newest change read. Every way a bulk operation can give no complete
file (FAILED with partial data, CANCELED, EXPIRED, an expired download URL, the shop's 5 bulk query
operations busy) falls back to paging, says so in one log line, and still pushes every order exactly once;
nothing matched (``url`` null) pushes nothing and keeps the watermark.

The sandbox's ``ordersCount`` counts with the store's own order search; one test overstates it (a count that
is not exact) through ``add_orders_count``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import ACME, BOLT, World

pytestmark = pytest.mark.e2e

BULK_LINE = "reading it with a Shopify bulk operation (gid://shopify/BulkOperation/"
PAGED_INSTEAD = "reading the backlog page by page instead"


def add_orders_count(store: Any, monkeypatch: pytest.MonkeyPatch, overstate: int = 0) -> None:
    """The sandbox store's ``ordersCount``, answering ``overstate`` more than it finds (a count that is not
    exact)."""

    def orders_count(source, info, query=None, limit=10000, savedSearchId=None):  # noqa: N803
        count = len(store._order_filter(query).apply(store.orders)) + overstate
        if limit is not None and count > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": count, "precision": "EXACT"}

    monkeypatch.setitem(store._resolvers, ("QueryRoot", "ordersCount"), orders_count)


@pytest.fixture
def counted(world, monkeypatch) -> World:
    monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "3")
    return world


def backlog(world: World) -> list[dict[str, Any]]:
    """Seven orders: one of 30 lines (more than a MerchantOrders page of 25 carries), split orders, one of
    Bolt's alone, one history-free unpaid order (blocked by the rules either way)."""
    orders = [
        world.order([(ACME, "ACME-HAMMER", 1, "24.00")]),
        world.order([(ACME, "ACME-WRENCH-S", 2, "18.00"), (BOLT, "BOLT-M6-100", 3, "9.50")]),
        world.order([(ACME, "ACME-HAMMER" if k % 2 else "ACME-WRENCH-L", k + 1, "24.00") for k in range(30)]),
        world.order([(BOLT, "BOLT-DRILL-18V", 1, "129.00")]),
        world.order([(ACME, "ACME-WRENCH-L", 1, "19.00")], status="PENDING"),
        world.order([(ACME, "ACME-HAMMER", 4, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")]),
        world.order([(BOLT, "BOLT-M6-100", 5, "9.50")]),
    ]
    return orders


def pushed(world: World) -> dict[str, Any]:
    """What the vendors received, by link-back marker: the lines (sku, quantity) of each vendor order."""
    acme = {
        o.get("sourceIdentifier"): sorted((li.get("sku") or "", li["quantity"]) for li in o["lineItems"])
        for o in world.acme_orders()
    }
    bolt = sorted(
        sorted((li.get("sku") or "", li["quantity"]) for li in o["line_items"]) for o in world.bolt_orders()
    )
    assert len(acme) == len(world.acme_orders()) and len(bolt) == len(world.bolt_orders())
    return {"acme": acme, "bolt": bolt}


def newest_update(world: World) -> datetime:
    return max(datetime.fromisoformat(o["updatedAt"].replace("Z", "+00:00")) for o in world.merchant.orders)


def assert_all_pushed_once(world: World, run, orders: list[dict[str, Any]]) -> None:
    assert run.state == "success", run.lines
    for order in orders:
        outcomes = [run.outcome(order["name"], v) for v in (ACME, BOLT) if run.decisions(order["name"], v)]
        assert outcomes, f"no decision for {order['name']}\n" + "\n".join(run.lines)
    paid = [o for o in orders if o["displayFinancialStatus"] == "PAID"]
    acme_expected = {
        f"ordersync-{o['legacyResourceId']}"
        for o in paid
        if any(li["vendor"] == ACME for li in o["lineItems"])
    }
    assert {o.get("sourceIdentifier") for o in world.acme_orders()} == acme_expected
    assert len(world.acme_orders()) == len(acme_expected)
    assert len(world.bolt_orders()) == sum(
        1 for o in paid if any(li["vendor"] == BOLT for li in o["lineItems"])
    )
    assert world.ledger().watermark("merchant_orders") == newest_update(world)


def test_backlog_read_with_a_bulk_operation_pushes_what_paging_pushes(
    counted, order_sync_dag, monkeypatch, tmp_path
):
    world = counted
    orders = backlog(world)
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    assert any(line.startswith("backlog of 7 orders since ") and BULK_LINE in line for line in run.lines), (
        run.lines
    )
    completed = [line for line in run.lines if line.startswith("bulk operation COMPLETED: ")]
    assert len(completed) == 1 and completed[0].startswith("bulk operation COMPLETED: 7 orders, 38 lines in ")
    assert not any(PAGED_INSTEAD in line for line in run.lines)
    [op] = world.merchant.list_bulk_operations()
    assert op["status"] == "COMPLETED" and "sortKey: UPDATED_AT" in op["query"]
    big = next(
        o
        for o in world.acme_orders()
        if o["sourceIdentifier"] == f"ordersync-{orders[2]['legacyResourceId']}"
    )
    assert len(big["lineItems"]) == 30  # every line came through the bulk file
    bulk_result = pushed(world)

    # The same backlog on an identical sandbox, read page by page (threshold not reached): the same pushes.
    from ordersync_sandbox import Sandbox

    with Sandbox() as other:
        paged_world = World(other, order_sync_dag, monkeypatch, f"sqlite:///{tmp_path / 'paged.db'}")
        monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "2000")
        paged_orders = backlog(paged_world)
        paged = paged_world.run()
        assert_all_pushed_once(paged_world, paged, paged_orders)
        assert any("7 orders since " in line and "reading them page by page" in line for line in paged.lines)
        assert paged_world.merchant.list_bulk_operations() == []
        assert pushed(paged_world) == bulk_result

    # Back on the first world: nothing changed; a small incremental run (below the threshold: the orders of
    # the watermark's second are read again) pages and pushes nothing again.
    monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "100")
    world.set_vendors(world.vendors)
    for store, conn_id in (
        (world.merchant, "ordersync_merchant"),
        (world.acme, "ordersync_vendor_acme"),
        (world.bolt, "ordersync_vendor_bolt"),
    ):
        name, value = world.sandbox.connection_env(store, conn_id)
        monkeypatch.setenv(name, value)
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_ORDERSYNC_LEDGER",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": world.ledger_url}}),
    )
    writes = len(world.vendor_writes())
    again = world.run()
    assert again.state == "success", again.lines
    assert any("reading them page by page" in line for line in again.lines), again.lines
    assert len(world.vendor_writes()) == writes
    assert len(world.merchant.list_bulk_operations()) == 1


def _wrap(world: World, monkeypatch, field: tuple[str, str], after) -> None:
    store = world.merchant
    original = store._resolvers[field]

    def wrapped(source, info, **args):
        result = original(source, info, **args)
        return after(result) or result

    monkeypatch.setitem(store._resolvers, field, wrapped)


def test_failed_with_partial_data_falls_back_to_paging(counted):
    world = counted
    orders = backlog(world)
    world.merchant.fail_next_bulk_operation(error_code="INTERNAL_SERVER_ERROR", partial=True)
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    [line] = [line for line in run.lines if PAGED_INSTEAD in line]
    assert "FAILED (INTERNAL_SERVER_ERROR)" in line and "partial data is not used" in line
    assert world.merchant.list_bulk_operations()[0]["partialDataUrl"] is not None


def test_a_shop_at_its_bulk_limit_is_read_page_by_page(counted):
    world = counted
    orders = backlog(world)
    world.merchant.refuse_next_bulk_run(code="LIMIT_REACHED")
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    [line] = [line for line in run.lines if PAGED_INSTEAD in line]
    assert "LIMIT_REACHED" in line
    assert world.merchant.list_bulk_operations() == []  # no operation was started


def test_canceled_operation_falls_back_to_paging(counted, monkeypatch):
    world = counted
    orders = backlog(world)
    store = world.merchant

    def cancel(result):  # someone cancels it as soon as it starts
        store._m_bulk_cancel(None, None, id=result["bulkOperation"]["id"])

    _wrap(world, monkeypatch, ("Mutation", "bulkOperationRunQuery"), cancel)
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    [line] = [line for line in run.lines if PAGED_INSTEAD in line]
    assert "is CANCELED: it gave no file to read" in line


@pytest.mark.parametrize("when", ["before the poll", "before the download"])
def test_expired_operation_or_url_falls_back_to_paging(counted, monkeypatch, when):
    world = counted
    orders = backlog(world)
    store = world.merchant
    original = store._resolvers[("QueryRoot", "bulkOperation")]

    def poll(source, info, id):  # noqa: A002
        op = original(source, info, id=id)
        if op is not None and op["status"] == "COMPLETED":
            if when == "before the poll":
                store.expire_bulk_operation(id)
                return original(source, info, id=id)
            public = dict(op)
            store.expire_bulk_operation(id)  # the answer still names the URL; the URL no longer works
            return public
        return op

    monkeypatch.setitem(store._resolvers, ("QueryRoot", "bulkOperation"), poll)
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    [line] = [line for line in run.lines if PAGED_INSTEAD in line]
    if when == "before the poll":
        assert "is EXPIRED: it gave no file to read" in line
    else:
        assert "its file is gone (HTTP 400" in line


def test_nothing_matched_keeps_the_watermark(world, monkeypatch):
    orders = [world.order([(ACME, "ACME-HAMMER", 1, "24.00")])]
    first = world.run()
    assert first.state == "success", first.lines
    watermark = world.ledger().watermark("merchant_orders")
    assert watermark is not None
    # the count says 10 (orders changed and changed back, or a count that is not exact): the bulk read finds
    # nothing newer than the watermark but the order read again at it
    add_orders_count(world.merchant, monkeypatch, overstate=10)
    monkeypatch.setenv("ORDERSYNC_BULK_THRESHOLD", "3")
    store = world.merchant
    original = store._m_bulk_run_query

    def nothing(source, info, query, groupObjects=False):  # noqa: N803
        return original(
            source, info, query=query.replace("updated_at:>=", "updated_at:<"), groupObjects=groupObjects
        )

    monkeypatch.setitem(store._resolvers, ("Mutation", "bulkOperationRunQuery"), nothing)
    writes = len(world.vendor_writes())
    run = world.run()
    assert run.state == "success", run.lines
    assert any("COMPLETED with no file: nothing matched" in line for line in run.lines), run.lines
    assert world.ledger().watermark("merchant_orders") == watermark
    assert len(world.vendor_writes()) == writes
    assert run.decisions(orders[0]["name"]) == []


def test_a_sixth_concurrent_operation_falls_back_to_paging(counted):
    import requests

    world = counted
    orders = backlog(world)
    store = world.merchant
    store.bulk_start_delay = 3600.0  # five operations of another app that stay CREATED
    name, value = world.sandbox.connection_env(store, "ordersync_merchant")
    import json

    token = json.loads(value).get("password") or "shpat_test_merchant_SECRET"
    for _ in range(5):
        answer = requests.post(
            f"{store.url}/admin/api/2026-10/graphql.json",
            headers={"X-Shopify-Access-Token": token},
            json={
                "query": 'mutation { bulkOperationRunQuery(query: "{ orders { edges { node { id } } } }", '
                "groupObjects: false) { bulkOperation { id } userErrors { message } } }"
            },
            timeout=10,
        ).json()
        assert answer["data"]["bulkOperationRunQuery"]["userErrors"] == [], answer
    run = world.run()
    assert_all_pushed_once(world, run, orders)
    [line] = [line for line in run.lines if PAGED_INSTEAD in line]
    assert "OPERATION_IN_PROGRESS" in line and "all in use" in line
    assert len(store.list_bulk_operations()) == 5
