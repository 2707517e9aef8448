"""The bulk operation's flat JSONL rebuilt into orders with their line items (bulk.Spool): children carry
``__parentId`` and may come before, after or between their parents; orders keep the file's order."""

from __future__ import annotations

import json

from ordersync.platforms.shopify.bulk import Spool, inner_query
from ordersync.platforms.shopify.parse import merchant_order


def _order(n: int) -> dict:
    return {
        "id": f"gid://shopify/Order/{n}",
        "name": f"#{1000 + n}",
        "createdAt": "2026-11-01T00:00:00Z",
        "updatedAt": f"2026-11-01T00:00:{n:02d}Z",
    }


def _line(order: int, k: int) -> dict:
    return {
        "id": f"gid://shopify/LineItem/{order * 100 + k}",
        "title": f"line {k}",
        "quantity": k + 1,
        "originalUnitPriceSet": {"shopMoney": {"amount": "2.50", "currencyCode": "USD"}},
        "__parentId": f"gid://shopify/Order/{order}",
    }


def _rebuilt(objects: list[dict], **kw) -> list[tuple[str, list[str]]]:
    spool = Spool(**kw).extend(json.dumps(o) + "\n" for o in objects)
    try:
        return [(node["id"], [line["id"] for line in lines]) for node, lines in spool.orders()]
    finally:
        spool.close()


EXPECTED = [
    ("gid://shopify/Order/1", ["gid://shopify/LineItem/100", "gid://shopify/LineItem/101"]),
    ("gid://shopify/Order/2", []),
    ("gid://shopify/Order/3", ["gid://shopify/LineItem/300"]),
]


def test_grouped_file():
    objects = [_order(1), _line(1, 0), _line(1, 1), _order(2), _order(3), _line(3, 0)]
    assert _rebuilt(objects) == EXPECTED


def test_children_before_their_parents():
    objects = [_line(3, 0), _line(1, 0), _line(1, 1), _order(1), _order(2), _order(3)]
    assert _rebuilt(objects) == EXPECTED


def test_every_root_first_then_the_last_parents_children_first():
    """As Shopify (and the sandbox) write ungrouped output."""
    objects = [_order(1), _order(2), _order(3), _line(3, 0), _line(1, 0), _line(1, 1)]
    assert _rebuilt(objects) == EXPECTED


def test_interleaved_with_other_orders():
    objects = [_order(1), _line(1, 0), _order(3), _order(2), _line(3, 0), _line(1, 1)]
    assert _rebuilt(objects) == [EXPECTED[0], EXPECTED[2], EXPECTED[1]]  # file order of the orders


def test_many_lines_and_many_orders_go_through_the_scratch_file(tmp_path):
    objects = [_order(n) for n in range(1, 60)]
    objects += [_line(n, k) for k in range(40) for n in range(59, 0, -1)]  # 2,360 lines, spooled in batches
    rebuilt = _rebuilt(objects, directory=str(tmp_path))
    assert [order_id for order_id, _ in rebuilt] == [f"gid://shopify/Order/{n}" for n in range(1, 60)]
    assert all(
        lines == [f"gid://shopify/LineItem/{n * 100 + k}" for k in range(40)]
        for n, (_, lines) in zip(range(1, 60), rebuilt, strict=True)
    )
    assert list(tmp_path.iterdir()) == []  # the scratch file is removed on close


def test_orphans_and_blank_lines_and_the_parent_id_is_dropped():
    spool = Spool().extend([json.dumps(_order(1)), "", json.dumps(_line(1, 0)), json.dumps(_line(9, 0))])
    try:
        assert spool.roots == 1 and spool.children == 2
        assert spool.orphans() == 1
        ((node, lines),) = list(spool.orders())
        assert "__parentId" not in lines[0]
        order = merchant_order(node, lines)
        assert [li.id for li in order.line_items] == ["gid://shopify/LineItem/100"]
        assert order.name == "#1001"
    finally:
        spool.close()


def test_the_inner_query_has_the_search_written_in_and_no_variables():
    text = inner_query("updated_at:>='2026-11-01T00:00:00Z' \"quoted\"")
    assert "$query" not in text
    assert 'orders(query: "updated_at:>=\'2026-11-01T00:00:00Z\' \\"quoted\\"", sortKey: UPDATED_AT)' in text
    from ordersync_sandbox.schema import validate_document

    assert validate_document(text) == []
