"""Smoke run of the benchmark script (N=200, V=4): it runs end to end through Airflow and its report holds
every figure the benchmark promises. Figures are printed, never asserted as timings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.e2e

FIGURES = (
    "state",
    "wall_seconds",
    "orders_per_second",
    "bound",
    "bound_over_achieved",
    "api",
    "task_instances",
    "task_peak_rss_mb",
    "outcomes",
)


def test_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "benchmark.py"),
            "--orders",
            "200",
            "--vendors",
            "4",
            "--json",
            str(out),
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=str(ROOT),
    )
    summary = [
        line for line in done.stdout.splitlines() if line.startswith(("•", "  order_sync", "  tracking_sync"))
    ]
    print("\n".join(summary))  # the figures, for the CI log
    assert done.returncode == 0, "\n".join(summary) + done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())["N=200,V=4"]
    assert report["pairs"] == 240  # 200 orders, every fifth split over two vendors
    for label in ("first", "second"):
        for dag in ("order_sync", "tracking_sync"):
            run = report["runs"][label][dag]
            assert set(FIGURES) <= set(run), (label, dag, sorted(run))
            assert run["state"] == "success"
            assert set(run["api"]["calls"]) == {
                "merchant_reads",
                "merchant_writes",
                "vendor_reads",
                "vendor_writes",
                "total",
            }
            assert run["bound"]["seconds"] >= 0 and run["wall_seconds"] > 0
            assert run["task_peak_rss_mb"] and run["task_peak_rss_mb"] > 0
    first, second = report["runs"]["first"], report["runs"]["second"]
    # every (order, vendor) pair pushed exactly once, and nothing written again by the rerun
    assert report["checks"] and all(v is True for v in report["checks"].values()), report["checks"]
    assert first["order_sync"]["outcomes"]["pushed"] == 240
    assert first["order_sync"]["api"]["calls"]["vendor_writes"] == 240
    assert second["order_sync"]["api"]["calls"]["vendor_writes"] == 0
    assert second["tracking_sync"]["api"]["calls"]["merchant_writes"] == 0
    assert first["order_sync"]["api"]["per_pushed_order"]["total"] <= 1.2
    # overhead grows with vendors, not orders: one mapped task per vendor plus four
    assert first["order_sync"]["task_instances"] == 4 + 4
    assert first["tracking_sync"]["task_instances"] == 4 + 2
    assert set(report["dag_parse_ms"]) == {"order_sync.py", "tracking_sync.py"}
