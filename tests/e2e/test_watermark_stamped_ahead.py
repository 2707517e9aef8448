"""The merchant watermark never passes the moment the read began.

A store can stamp an order ahead of the moment it was read (Shopify stamps two writes in one second a second
apart; clocks drift; an update is indexed after a later one). The watermark used to be the newest
``updatedAt`` seen, so an order changed before the read began but stamped earlier than that newest one fell
behind the watermark and was never read again by a scheduled run. CI caught this once, as a flaky
test_history_and_fulfilled: an order fulfilled in the same second it was created was stamped a second ahead,
and the other orders, tagged before the next run, were never seen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordersync.orders.fetch import MERCHANT_WATERMARK
from tests.e2e.conftest import ACME

pytestmark = pytest.mark.e2e


def test_an_order_stamped_ahead_does_not_hide_the_next_change(world):
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    early = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], updatedAt=ahead)
    before_run = datetime.now(UTC)
    first = world.run()
    assert first.state == "success", first.lines
    assert first.outcome(early["name"], ACME) == "pushed"
    watermark = world.ledger().watermark(MERCHANT_WATERMARK)
    assert watermark is not None
    assert watermark <= datetime.now(UTC), f"watermark {watermark} is ahead of the clock"
    assert watermark >= before_run.replace(microsecond=0), watermark

    later = world.order([(ACME, "ACME-HAMMER", 2, "24.00")])  # stamped now: before `ahead`
    second = world.run()
    assert second.state == "success", second.lines
    assert second.outcome(later["name"], ACME) == "pushed"
    assert sorted(o.get("sourceIdentifier") or "" for o in world.acme_orders()) == sorted(
        [f"ordersync-{early['legacyResourceId']}", f"ordersync-{later['legacyResourceId']}"]
    )
