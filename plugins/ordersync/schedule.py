"""Which scheduled ticks sync.

The DAG ticks every 5 minutes (the smallest allowed ``sync_frequency_minutes``);
a tick syncs when its minute of the day is on the configured frequency's grid
(every frequency allowed divides 60). Manual runs always sync. This keeps the
schedule a setting, with no Variable read while the DAG file is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TICK_MINUTES = 5


def sync_slot(frequency_minutes: int, run_type: object, run_after: datetime | None) -> tuple[bool, str]:
    kind = str(getattr(run_type, "value", run_type) or "").lower()
    if kind != "scheduled" or run_after is None:
        return True, f"{kind or 'manual'} run: always syncs"
    moment = run_after.astimezone(UTC)
    minute_of_day = moment.hour * 60 + moment.minute
    if minute_of_day % frequency_minutes < TICK_MINUTES:
        return True, f"sync slot for sync_frequency_minutes={frequency_minutes}"
    next_slot = moment + timedelta(minutes=frequency_minutes - minute_of_day % frequency_minutes)
    return False, (
        f"not a sync slot: sync_frequency_minutes={frequency_minutes}, next sync at "
        f"{next_slot:%H:%M} UTC (ticks every {TICK_MINUTES} min; nothing fetched or written)"
    )
