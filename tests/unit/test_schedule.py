from datetime import UTC, datetime

import pytest

from ordersync.schedule import sync_slot


@pytest.mark.parametrize(
    "minute, due", [(0, True), (5, False), (10, False), (15, True), (30, True), (50, False)]
)
def test_scheduled_ticks_follow_the_frequency(minute, due):
    ok, why = sync_slot(15, "scheduled", datetime(2026, 11, 27, 10, minute, tzinfo=UTC))
    assert ok is due
    if not due:
        assert "next sync at" in why and "sync_frequency_minutes=15" in why


def test_every_tick_syncs_at_five_minutes():
    assert all(sync_slot(5, "scheduled", datetime(2026, 1, 1, 3, m, tzinfo=UTC))[0] for m in range(0, 60, 5))


def test_hourly():
    assert sync_slot(60, "scheduled", datetime(2026, 1, 1, 3, 0, tzinfo=UTC))[0]
    assert not sync_slot(60, "scheduled", datetime(2026, 1, 1, 3, 30, tzinfo=UTC))[0]


def test_manual_runs_always_sync():
    assert sync_slot(60, "manual", datetime(2026, 1, 1, 3, 7, tzinfo=UTC))[0]
    assert sync_slot(60, "scheduled", None)[0]
