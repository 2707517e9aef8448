"""tracking_sync's one merchant writer, end to end: the vendor tasks read only their own stores, and every
merchant read and write of the run is made by ``write_merchant_fulfillments``, one client that sees the whole
cost bucket. A write it cannot make fails that task (and the run) without holding back the other vendors'
shipments, keeps that vendor's watermark, and leaves no run scratch behind."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

WRITER = "write_merchant_fulfillments"


def _vendor_order(world, merchant_order, vendor):
    pair = world.ledger().pairs([merchant_order["id"]], vendor)[(merchant_order["id"], vendor)]
    return pair.vendor_order_id


def _numbers(world, order) -> list[str]:
    return sorted(
        t["number"] for f in world.merchant.get_order(order["id"])["fulfillments"] for t in f["trackingInfo"]
    )


def test_vendor_tasks_never_call_the_merchant_and_the_writer_spends_two_calls_per_shipment(tracking_world):
    world = tracking_world
    orders = [
        world.order([(ACME, "ACME-HAMMER", 1, "24.00")]),
        world.order([(ACME, "ACME-WRENCH-S", 2, "18.00"), (BOLT, "BOLT-M6-100", 1, "9.50")]),
        world.order([(BOLT, "BOLT-DRILL-18V", 1, "129.00")]),
    ]
    assert world.run().state == "success"
    world.acme.fulfill_order(_vendor_order(world, orders[0], ACME), company="UPS", number="1ZW1")
    world.acme.fulfill_order(_vendor_order(world, orders[1], ACME), company="UPS", number="1ZW2")
    world.bolt.add_tracking(_vendor_order(world, orders[1], BOLT), "USPS", "9400W2")
    world.bolt.add_tracking(_vendor_order(world, orders[2], BOLT), "USPS", "9400W3")
    world.sandbox.clear_logs()

    result = world.run_tracking()
    assert result.state == "success", "\n".join(result.lines)
    assert result.task_states[WRITER] == ["success"]
    assert sorted(result.task_states["sync_vendor_tracking"]) == ["success", "success"]
    assert _numbers(world, orders[0]) == ["1ZW1"]
    assert _numbers(world, orders[1]) == ["1ZW2", "9400W2"]
    assert _numbers(world, orders[2]) == ["9400W3"]

    merchant = world.merchant.log()
    vendors = world.acme.log() + world.bolt.log()
    assert merchant and vendors
    # dag.test runs the tasks one after another: every merchant request comes after the last vendor read,
    # i.e. from the writer, none from a vendor task
    assert min(e["time"] for e in merchant) >= max(e["time"] for e in vendors)
    assert [e for e in merchant if e.get("fault") or e["status"] != 200] == []  # no THROTTLED, no error
    ops = [e["operation"] for e in merchant]  # the sandbox names a GraphQL request by its root field
    assert sorted(set(ops)) == ["fulfillmentCreate", "order"]
    assert ops.count("fulfillmentCreate") == 4  # one per shipment
    assert len(ops) <= 2 * 4  # and the merchant order's fulfilment orders read once per shipment, at most
    assert world.ledger().dump(include_scratch=True)["ordersync_run_shipments"] == []

    # nothing changed: the vendor tasks decide it all from the ledger, and the merchant is not called at all
    world.sandbox.clear_logs()
    again = world.run_tracking()
    assert again.state == "success" and again.task_states[WRITER] == ["success"]
    assert world.merchant.log() == []
    assert {o for order in orders for v in (ACME, BOLT) for o in again.outcomes(order["name"], v)} == {
        "unchanged"
    }


def test_a_write_the_writer_cannot_make_fails_the_run_keeps_that_vendor_and_writes_the_others(tracking_world):
    world = tracking_world
    stuck = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    fine = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    assert world.run().state == "success"
    world.merchant.fulfill_order(
        stuck["id"], company="DHL", number="BYHAND1"
    )  # shipped by hand at the merchant
    world.acme.fulfill_order(_vendor_order(world, stuck, ACME), company="UPS", number="1ZSTUCK")
    world.bolt.add_tracking(_vendor_order(world, fine, BOLT), "USPS", "9400FINE")

    result = world.run_tracking()
    assert result.state == "failed"
    assert result.task_states[WRITER] == ["failed"] and result.task_states["summary"] == ["failed"]
    assert sorted(result.task_states["sync_vendor_tracking"]) == ["success", "success"]
    assert result.outcomes(stuck["name"], ACME) == ["failed"]
    assert "no open line" in result.tracking(stuck["name"], ACME)[0]
    assert result.outcomes(fine["name"], BOLT) == ["written"]
    assert _numbers(world, fine) == ["9400FINE"]
    assert _numbers(world, stuck) == ["BYHAND1"]  # nothing written for the stuck one
    ledger = world.ledger()
    assert ledger.watermark(f"tracking:{BOLT}") is not None  # Bolt's shipments were all written
    assert ledger.watermark(f"tracking:{ACME}") is None  # Acme's order is read again by the next run
    assert ledger.dump(include_scratch=True)["ordersync_run_shipments"] == []  # the summary cleared it

    world.sandbox.clear_logs()
    again = world.run_tracking()
    assert again.outcomes(stuck["name"], ACME) == ["failed"]  # read again, still refused, still reported
    assert again.outcomes(fine["name"], BOLT) in ([], ["unchanged"])  # at most re-read at its watermark
    assert world.bolt.writes() == [] and world.merchant.writes() == []
