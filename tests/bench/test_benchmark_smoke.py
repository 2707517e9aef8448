"""Smoke run of the benchmark script (N=200, V=4): it runs end to end through Airflow and its report holds
every figure the benchmark promises. Figures are printed, never asserted as timings.

The bulk threshold is forced to 100 so the first order_sync reads its 200-order backlog with a bulk operation
and the second (a few dozen changed orders) pages: both fetch models of the bound are exercised."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from tests.support import POSTGRES_URL, ROOT, postgres_available

BENCHMARK = ROOT / "scripts" / "benchmark.py"

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
    "task_seconds_by_task",
)
API = (
    "calls",
    "throttled",
    "merchant_points",
    "merchant_orders_read",
    "merchant_points_per_order",
    "merchant_calls_per_shipment",
    "merchant_operations",
)


def _postgres() -> str:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.mark.e2e
@pytest.mark.parametrize("ledger", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_benchmark_smoke(tmp_path, ledger):
    out = tmp_path / "bench.json"
    server = ["--postgres-url", _postgres()] if ledger == "postgresql" else []
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--orders",
            "200",
            "--vendors",
            "4",
            "--bulk-threshold",
            "100",
            "--ledger",
            ledger,
            *server,
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
    data = json.loads(out.read_text())
    key = "N=200,V=4" if ledger == "sqlite" else "N=200,V=4,ledger=postgresql"
    assert set(data) == {key}  # the SQLite ledger keeps the key the older files have
    report = data[key]
    assert report["pairs"] == 240  # 200 orders, every fifth split over two vendors
    assert report["ledger"]["kind"] == ledger
    if ledger == "postgresql":  # a database of its own, gone after the run; no password in the file
        database = report["ledger"]["database"]
        assert database.startswith("ordersync_bench_") and report["ledger"]["server_version"]
        assert not _database_exists(database)
        password = make_url(POSTGRES_URL).password
        assert not password or str(password) not in out.read_text()
    assert report["config"]["bulk_threshold"] == 100
    assert report["config"]["shopify_bulk"]["objects_per_second"] > 0
    for label in ("first", "second"):
        for dag in ("order_sync", "tracking_sync"):
            run = report["runs"][label][dag]
            assert set(FIGURES) <= set(run), (label, dag, sorted(run))
            assert set(API) <= set(run["api"]), (label, dag, sorted(run["api"]))
            assert run["state"] == "success"
            assert set(run["api"]["calls"]) == {
                "merchant_reads",
                "merchant_writes",
                "vendor_reads",
                "vendor_writes",
                "total",
            }
            assert set(run["api"]["throttled"]) == {"merchant", "vendors"}
            assert run["bound"]["seconds"] >= 0 and run["wall_seconds"] > 0
            assert run["task_peak_rss_mb"] and run["task_peak_rss_mb"] > 0
            # per task id, from the metadata database: every task instance that ran, sum >= longest
            durations = run["task_seconds_by_task"]
            assert {"validate_settings", "summary"} <= set(durations), durations
            for task_id, d in durations.items():
                assert d["count"] == run["task_instances_by_task"][task_id], (task_id, d)
                assert d["sum"] >= d["max"] >= 0 and d["span"] >= d["max"] - 0.01, (task_id, d)
    first, second = report["runs"]["first"], report["runs"]["second"]
    # every (order, vendor) pair pushed exactly once, and nothing written again by the rerun
    assert report["checks"] and all(v is True for v in report["checks"].values()), report["checks"]
    assert first["order_sync"]["outcomes"]["pushed"] == 240
    assert first["order_sync"]["api"]["calls"]["vendor_writes"] == 240
    assert second["order_sync"]["api"]["calls"]["vendor_writes"] == 0
    assert second["tracking_sync"]["api"]["calls"]["merchant_writes"] == 0
    assert first["order_sync"]["api"]["per_pushed_order"]["total"] <= 1.2

    # order_sync: the first run's backlog came in one bulk operation, the rerun's few changes page by page
    fetch = first["order_sync"]["merchant_fetch"]
    assert fetch["path"] == "bulk", fetch
    (op,) = fetch["bulk_operations"]
    assert op["status"] == "COMPLETED" and op["root_objects"] == 200
    assert op["objects"] == 200 + 240  # JSONL lines: the orders and their line items
    assert fetch["bulk_lines_downloaded"] == op["objects"] and fetch["downloads"] == 1 and fetch["pages"] == 0
    assert first["order_sync"]["bound"]["merchant_fetch"] == fetch["seconds"] > 0
    assert first["order_sync"]["api"]["merchant_orders_read"] == 200
    assert 0 < first["order_sync"]["api"]["merchant_points_per_order"] < 0.5  # the mutation and polls only
    again = second["order_sync"]["merchant_fetch"]
    assert again["path"] == "paged" and again["bulk_operations"] == [] and again["pages"] >= 1, again
    assert set(first["order_sync"]["task_seconds_by_task"]) >= {
        "fetch_orders",
        "decide",
        "push_vendor_orders",
    }
    assert first["order_sync"]["task_seconds_by_task"]["push_vendor_orders"]["count"] == 4

    # tracking_sync: every shipment written once, merchant calls per shipment counted
    written = first["tracking_sync"]["outcomes"]["written"]
    assert written == first["shipped_by_vendors"] > 0
    assert first["tracking_sync"]["api"]["merchant_calls_per_shipment"] >= 1
    assert first["tracking_sync"]["task_seconds_by_task"]["sync_vendor_tracking"]["count"] == 4
    # the bound follows the DAG: with the one merchant writer, vendor reads then that task's merchant work
    bound = first["tracking_sync"]["bound"]
    writer = "write_merchant_fulfillments" in first["tracking_sync"]["task_instances_by_task"]
    assert ("merchant_work" in bound) == writer and bound["model"], bound
    if writer:
        assert bound["seconds"] == pytest.approx(bound["vendor_reads"] + bound["merchant_work"], abs=0.011)

    # overhead grows with vendors, not orders: one mapped task per vendor, every other task once
    for dag in ("order_sync", "tracking_sync"):
        by_task = first[dag]["task_instances_by_task"]
        mapped = "push_vendor_orders" if dag == "order_sync" else "sync_vendor_tracking"
        assert by_task[mapped] == 4 and all(n == 1 for t, n in by_task.items() if t != mapped), by_task
    assert first["order_sync"]["task_instances"] == 4 + 4
    assert set(report["dag_parse_ms"]) == {"order_sync.py", "tracking_sync.py"}

    # the table and the comparison read this file (and the older ones: test_tables_read_older_files)
    table = _bench("--table", str(out))
    assert "| ledger |" in table and f"| 200 | 4 | {ledger} | first | order_sync |" in table
    assert "| fetch_orders |" in table and "| sync_vendor_tracking |" in table
    compared = _bench("--compare", str(out), str(out))
    assert f"| 200 | 4 | {ledger} | first | order_sync | success |" in compared
    assert f"| 200 | 4 | {ledger} | first | tracking_sync | sync_vendor_tracking | 4 → 4 |" in compared


def _database_exists(name: str) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        return found is not None
    finally:
        engine.dispose()


def _bench(*args: str) -> str:
    return subprocess.run(
        [sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, check=True, cwd=str(ROOT)
    ).stdout


def test_tables_read_older_files():
    """--table and --compare read the results files of earlier commits (no ledger, fetch path or per-task
    sums): the before/after table of issue 14 is made against docs/benchmarks-7145eae.json."""
    old = ROOT / "docs" / "benchmarks-7145eae.json"
    table = _bench("--table", str(old))
    assert "| 10000 | 50 | sqlite | first | order_sync | success | 1396.44 |" in table
    assert "| 10000 | 50 | sqlite | first | order_sync | fetch_orders | 1 | 1277.81 |" in table
    compared = _bench("--compare", str(old), str(old))
    assert "| 10000 | 50 | sqlite | first | tracking_sync | success | 287.97 → 287.97 |" in compared
    assert (
        "| 10000 | 50 | sqlite | first | order_sync | push_vendor_orders | 50 → 50 | ≥27.73 → ≥27.73 |"
        in compared
    )
    assert "13409 / 0 → 13409 / 0" in compared and "12.9 → 12.9" in compared
