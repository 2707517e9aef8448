"""The DAG-run deadline through the real scheduler: a run still going past its deadline makes the scheduler
queue ``ordersync.airflow.deadline.missed`` (a SyncCallback) on the Celery worker, which alerts the webhook once.

The stack's deadline is 15 s (``ORDERSYNC_RUN_DEADLINE_MINUTES=0.25``); the merchant store answers after 25 s,
so ``fetch_orders`` holds the run past it.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.stack


def _deadline_alerts(receiver, run_id: str) -> list[dict]:
    return [a for a in receiver.alerts() if a["kind"] == "deadline" and run_id in a["message"]]


def test_a_run_past_its_deadline_alerts_once(stack, alert_receiver):
    merchant = stack.stores["merchant"]
    merchant.latency = 25.0
    try:
        run_id = stack.trigger("order_sync", {"order_ids": ["#1002"], "dry_run": True})
        deadline = time.monotonic() + 120
        while not _deadline_alerts(alert_receiver, run_id):
            assert time.monotonic() < deadline, (
                f"no deadline alert for {run_id}; webhook got {alert_receiver.received}\n{stack.tail()}"
            )
            time.sleep(1)
    finally:
        merchant.latency = 0.0
    assert stack.wait_for_run("order_sync", run_id, timeout=240) == "success"
    [alert] = _deadline_alerts(alert_receiver, run_id)
    assert alert["operation"] == "order_sync"
    assert "0.25 minutes" in alert["message"] and "sync_frequency_minutes" in alert["suggestion"]
