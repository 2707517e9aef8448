"""Smoke run of the webhook latency benchmark (``benchmark.py --webhooks``) on the LocalExecutor stack: 10 streamed
orders at 2/s with their shipments, then a burst of 20. It asserts the correctness facts (every order pushed
exactly once, every shipment written once, no scheduled tick in the measurement) and that the report holds every
figure; the timings are printed, never asserted (they belong in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.e2e

LATENCY = ("n", "p50", "p95", "max", "mean")
ORDER_SEGMENTS = {
    "task_startup",
    "between_tasks",
    "validate_settings",
    "fetch_orders",
    "decide",
    "push_vendor_orders",
}
TRACKING_SEGMENTS = {"delivery", "task_startup", "sync_vendor_tracking", "write_merchant_fulfillments"}


def test_webhook_benchmark_smoke(tmp_path):
    out = tmp_path / "webhooks.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "benchmark.py"),
            "--webhooks",
            "--executor",
            "local",
            "--idle",
            "1",
            "--stream-rate",
            "2",
            "--stream-seconds",
            "5",
            "--ship-after",
            "1",
            "--burst",
            "20",
            "--burst-within",
            "2",
            "--timeout",
            "150",
            "--json",
            str(out),
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=str(ROOT),
    )
    print(done.stdout[-4000:])  # the figures, for the CI log
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())["local"]
    assert report["tick_cron"] == "0 0 1 1 *" and len(report["start_up_tick_runs"]) == 2

    idle, stream, burst = report["idle"], report["stream"], report["burst"]
    assert (
        idle["config"]["orders"] == 1 and stream["config"]["orders"] == 10 and burst["config"]["orders"] == 20
    )
    for scenario, pairs in ((idle, 2), (stream, 20), (burst, 40)):  # each order has an Acme and a Bolt line
        assert scenario["checks"] and all(v is True for v in scenario["checks"].values()), scenario["checks"]
        assert scenario["latency"]["webhook_to_vendor_order"]["n"] == pairs
        assert set(LATENCY) <= set(scenario["latency"]["webhook_to_vendor_order"])
        assert set(scenario["latency"]["webhook_to_vendor_order_by_vendor"]) == {"Acme Tools", "Bolt Supply"}
        assert scenario["before_accepted"]["receiver"]["n"] == pairs // 2
        assert ORDER_SEGMENTS <= set(scenario["breakdown"]["webhook_to_vendor_order"])
        assert len(scenario["pairs"]["rows"]) == pairs
        assert sum(scenario["stores"]["vendor_creates"].values()) == pairs  # one create request per pair
        runs = scenario["runs"]["order_sync"]
        assert runs["scheduled"] == 0 and runs["failed"] == 0 and runs["runs_that_pushed"] >= 1
        assert runs["asset_triggered"] >= runs["runs_that_pushed"]
        assert {"validate_settings", "fetch_orders", "decide", "push_vendor_orders", "summary"} <= set(
            runs["tasks"]
        )
        for figures in runs["tasks"].values():
            assert set(figures) == {"between_tasks", "scheduled_to_queued", "startup", "duration"}
        assert all(r["tasks"] for r in runs["list"])
    # every shipment reached the merchant exactly once
    assert stream["shipper"]["shipped"] == 20 and not stream["shipper"]["errors"]
    for scenario, shipments in ((idle, 2), (stream, 20)):
        assert scenario["stores"]["merchant_fulfilment_creates"] == shipments
        assert scenario["latency"]["shipment_to_merchant_fulfilment"]["n"] == shipments
        assert TRACKING_SEGMENTS <= set(scenario["breakdown"]["shipment_to_merchant_fulfilment"])
        assert scenario["runs"]["tracking_sync"]["asset_triggered"] >= 1
    for scenario in (idle, stream, burst):
        api = scenario["stores"]["api"]
        assert {"points_charged", "cost_bound_seconds"} <= set(api["merchant"]) and api["bolt"][
            "requests"
        ] > 0
    assert "shipment_to_merchant_fulfilment" not in burst["latency"]  # the burst ships nothing
    assert burst["paid_span_seconds"] <= 3

    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--webhooks", "--table", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )
    assert table.returncode == 0, table.stderr
    print(table.stdout)
    assert table.stdout.count("| local |") == 3 and "FAILED" not in table.stdout
