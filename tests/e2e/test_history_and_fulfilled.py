"""Safe by default: a store's history and orders the merchant shipped itself never reach a vendor.

The merchant store holds 30-day-old paid orders (history: created before the sync horizon the first run
records, ``initial_lookback_hours`` = 24 by default), an order the merchant fulfilled itself, an order whose
Acme lines the merchant shipped itself, and one new paid order. Only the new order and the unshipped share go
out; edits of the old orders push nothing and are reported once; a manual run naming an old order pushes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

MONTH_AGO = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _acme_markers(world) -> list[str]:
    return sorted(o.get("sourceIdentifier") or "" for o in world.acme_orders())


def test_history_and_merchant_fulfilled_orders_are_never_pushed(world):
    old = [
        world.order([(ACME, "ACME-HAMMER", 1, "24.00")], createdAt=MONTH_AGO, updatedAt=MONTH_AGO)
        for _ in range(3)
    ]
    shipped = world.order([(ACME, "ACME-HAMMER", 2, "24.00")])
    world.merchant.fulfill_order(shipped["id"], company="UPS", number="1Z999")
    half = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")])
    world.merchant.fulfill_order(half["id"], quantities={"ACME-HAMMER": 1})
    new = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])

    first = world.run()
    assert first.state == "success", first.lines
    assert _acme_markers(world) == [f"ordersync-{new['legacyResourceId']}"]
    assert len(world.bolt_orders()) == 1
    assert first.outcome(new["name"], ACME) == "pushed"
    assert first.outcome(shipped["name"], ACME) == "skipped"
    assert "already fulfilled at the merchant" in first.decisions(shipped["name"], ACME)[0]
    assert first.outcome(half["name"], ACME) == "skipped"
    assert "shipped this vendor's lines itself" in first.decisions(half["name"], ACME)[0]
    assert first.outcome(half["name"], BOLT) == "pushed"
    for order in old:  # the first run reads from the horizon on: history is not even read
        assert first.decisions(order["name"]) == []
    assert any("sync horizon recorded at" in line for line in first.lines), first.lines

    # Another app tags the old orders and the shipped one: re-read, reported once as history, nothing pushed.
    for order in [*old, shipped]:
        world.merchant.update_order(order["id"], tags=["touched-by-another-app"])
    writes_before = len(world.vendor_writes())
    second = world.run()
    assert second.state == "success", second.lines
    for order in old:
        assert second.outcome(order["name"], ACME) == "skipped"
        assert "history: created" in second.decisions(order["name"], ACME)[0]
        assert "before the sync horizon" in second.decisions(order["name"], ACME)[0]
    assert second.decisions(shipped["name"]) == []  # said in the first run; not again
    assert len(world.vendor_writes()) == writes_before
    assert len(world.acme_orders()) == 1

    # Edited again: still nothing pushed, and no line repeats what was said.
    for order in old:
        world.merchant.update_order(order["id"], note="edited once more")
    third = world.run()
    assert third.state == "success", third.lines
    for order in old:
        assert third.decisions(order["name"]) == []
    assert any(
        "reported once already" in line and "initial_lookback_hours" in line for line in third.lines
    ), third.lines
    assert len(world.vendor_writes()) == writes_before

    # The operator names one old order: it is pushed, once. The merchant-fulfilled one stays skipped.
    manual = world.run(order_ids=[old[0]["name"], shipped["name"]])
    assert manual.state == "success", manual.lines
    assert manual.outcome(old[0]["name"], ACME) == "pushed"
    assert manual.outcome(shipped["name"], ACME) == "skipped"
    assert _acme_markers(world) == sorted(
        [f"ordersync-{new['legacyResourceId']}", f"ordersync-{old[0]['legacyResourceId']}"]
    )
    pairs = world.ledger().pairs([o["id"] for o in old])
    assert pairs[(old[0]["id"], ACME)].state == "pushed"
    assert {pairs[(o["id"], ACME)].state for o in old[1:]} == {"skipped"}


def test_lookback_sets_the_horizon_and_a_dry_run_records_nothing(world):
    two_days = (datetime.now(UTC) - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], createdAt=two_days, updatedAt=two_days)
    world.settings(initial_lookback_hours=72)

    dry = world.run(dry_run=True)
    assert dry.state == "success", dry.lines
    assert dry.outcome(recent["name"], ACME) == "pushed"  # "[dry run] … would create"
    from ordersync.orders.fetch import SYNC_HORIZON

    assert world.ledger().watermark(SYNC_HORIZON) is None  # a dry run writes nothing, no horizon either
    assert world.acme_orders() == []

    real = world.run()
    assert real.outcome(recent["name"], ACME) == "pushed"
    horizon = world.ledger().watermark(SYNC_HORIZON)
    assert horizon is not None
    assert timedelta(hours=71) < datetime.now(UTC) - horizon < timedelta(hours=73)
    assert len(world.acme_orders()) == 1


def test_initial_lookback_hours_must_be_a_whole_number_of_hours(world):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.settings(initial_lookback_hours=-1)
    result = world.run()
    assert result.state == "failed"
    assert any(
        "initial_lookback_hours" in line for line in result.lines if line.startswith("configuration problem")
    )
    assert world.vendor_writes() == []
