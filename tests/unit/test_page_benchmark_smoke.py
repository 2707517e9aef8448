"""Smoke run of scripts/page_benchmark.py at a tiny size (2,000 vendor-order rows, SQLite), through its functions:
the generated ledger holds what the generator says it wrote, ``Story.order`` answers a generated order with its
shares (by name, numeric id and GID), and the timings and query plans come back. Timings are never asserted."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from sqlalchemy import func, select

from ordersync.ledger import Ledger
from ordersync.ledger.schema import alerts_table, decisions, shipments, vendor_orders
from ordersync.ledger.story import Story
from tests.support import ROOT

ROWS = 2_000
DECISIONS = 3


def _script():
    spec = importlib.util.spec_from_file_location(
        "ordersync_page_benchmark", ROOT / "scripts" / "page_benchmark.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _script()


@pytest.fixture(scope="module")
def generated(bench, tmp_path_factory):
    ledger = Ledger(f"sqlite:///{tmp_path_factory.mktemp('page-bench') / 'ledger.db'}")
    ledger.migrate()
    gen = bench.generate(
        ledger.engine, rows=ROWS, vendors=20, decisions_per_share=DECISIONS, chunk_orders=300
    )
    return ledger, gen


def test_the_generated_counts(bench, generated):
    ledger, gen = generated
    layout = gen.layout
    counts = bench.ledger_counts(ledger.engine)
    assert counts["ordersync_vendor_orders"] == ROWS == len(layout.kind)
    assert counts["ordersync_decisions"] == ROWS * DECISIONS
    assert counts["ordersync_merchant_orders"] == layout.orders
    assert 1.5 < ROWS / layout.orders < 3.5  # 1 to 4 shares an order, 2.5 on average
    assert all(1 <= len(layout.shares_of(i)) <= 4 for i in range(layout.orders))
    assert counts == {table: gen.rows.get(table, 0) for table in counts}
    with ledger.engine.connect() as conn:
        states = dict(
            conn.execute(select(vendor_orders.c.state, func.count()).group_by(vendor_orders.c.state)).all()
        )
        unmapped = conn.execute(
            select(vendor_orders.c.unmapped_skus).where(vendor_orders.c.hold_kind == "unmapped")
        ).scalars()
        assert all(raw and raw.startswith('["SKU-') for raw in unmapped)
        failing = states.get("failed", 0) + states.get("unknown", 0)
        assert conn.execute(select(func.count()).select_from(alerts_table)).scalar_one() == failing
        written = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.state == "written")
        ).scalar_one()
        assert (
            conn.execute(select(func.count(func.distinct(decisions.c.merchant_order_id)))).scalar_one()
            == layout.orders
        )
    assert states["pushed"] > 0.75 * ROWS  # mostly pushed ...
    assert {"held", "skipped", "failed"} <= set(states)  # ... and the others
    pushed_with_shipments = sum(1 for s in range(ROWS) if layout.ships[s])
    assert (
        written == sum(layout.ships)
        and 0.25 * states["pushed"] < pushed_with_shipments < 0.75 * states["pushed"]
    )


def test_story_answers_a_generated_order(bench, generated):
    ledger, gen = generated
    layout = gen.layout
    story = Story(ledger.engine)
    # an order with several shares, one of them failed if there is one (its page reads the alert's fix too)
    many = [i for i in range(layout.orders) if len(layout.shares_of(i)) >= 3]
    failing = [
        i for i in many if any(bench.KINDS[layout.kind[s]][0] == "failed" for s in layout.shares_of(i))
    ]
    i = (failing or many)[0]
    expected = layout.expected(i)
    for ref in (bench.order_name(i), bench.legacy_id(i), bench.order_gid(i)):
        page = story.order(ref)
        assert page is not None, ref
        assert page["merchant_order"]["id"] == bench.order_gid(i)
        assert page["merchant_order"]["name"] == bench.order_name(i)
        assert page["merchant_order"]["legacy_id"] == bench.legacy_id(i)
        assert page["merchant_order"]["buyer"]["email"] == f"buyer{i}@mail.test"
        got = [
            {
                "vendor": s["vendor"],
                "state": s["state"],
                "hold_kind": s["hold_kind"],
                "shipments": len(s["shipments"]),
            }
            for s in page["shares"]
        ]
        assert got == expected
        for share in page["shares"]:
            assert len(share["decisions"]) == DECISIONS
            assert share["decisions"][0]["at"] >= share["decisions"][-1]["at"]  # newest first
            if share["state"] == "failed":
                assert share["suggestion"] and share["vendor"] in share["suggestion"]
            if share["hold_kind"] == "unmapped":
                assert share["unmapped_skus"]
    assert story.order("#999999999") is None
    other = bench.order_name(i + 1)
    assert {s["merchant_order_name"] for s in story.shares(q=other)} >= {other}


def test_the_timings_and_plans_come_back(bench, generated):
    ledger, gen = generated
    measured = bench.measure(ledger.engine, gen, samples=5, repeats=2, overview_repeats=2)
    assert measured["order_page_wrong_answers"] == 0
    assert set(measured["order_page"]) >= set(bench.REF_KINDS)
    assert all(v["n"] == 5 for k, v in measured["order_page"].items() if k in bench.REF_KINDS)
    assert "overview()" in measured["lists"] and "shares(state='failed')" in measured["lists"]
    labels = {p["label"] for p in measured["plans"]}
    assert any(label.startswith("ordersync_decisions: merchant_order_id=") for label in labels)
    page = [p for p in measured["plans"] if p["label"] in measured["order_page_statements"]]
    assert page and all(p["plan"] for p in page)
    assert all(not p["full_scan"] for p in page), [p for p in page if p["full_scan"]]
    assert measured["order_page_plans_on_index"]
    report = bench.report(
        {
            "ledger": "sqlite",
            "rows": bench.ledger_counts(ledger.engine),
            "generate_seconds": gen.seconds,
            "measure": measured,
        }
    )
    assert "Story.order(<gid>)" in report and "EXPLAIN QUERY PLAN" in report
