"""Benchmark: ordersync's throughput against the vendor-API bound, calls per order, task count, memory.

    python scripts/benchmark.py --orders 1000 --vendors 5          # or: make bench ORDERS=1000 VENDORS=5
    python scripts/benchmark.py --table docs/benchmarks.json       # the results as a Markdown table
    python scripts/benchmark.py --webhooks --executor both         # event-driven latency: scripts/bench_webhooks.py

What it does, for one size (N merchant orders across V vendors):

1. Starts the sandbox stores in a **separate process** (so their memory never shows up in the task processes
   that the LocalExecutor forks): a Shopify merchant and V vendors, even-numbered on Shopify,
   odd-numbered on WooCommerce, each with a 10-SKU catalog. Every store answers after ``--latency`` seconds
   (default 0.05); Shopify stores charge the real cost limits (bucket 2,000 points, 100 points/s restore).
   The merchant holds a backlog of N paid orders (placed one a second, ending a minute ago); each has one
   line of vendor ``i mod V``, and every fifth
   also a line of the next vendor (so there are about 1.2 N (order, vendor) pairs to push).
2. Runs ``order_sync`` through Airflow (``dag.test(use_executor=True)`` on the LocalExecutor, parallelism
   ``--parallelism``, default 8 = the DAG's ``max_active_tis_per_dagrun``; the API server on loopback;
   SQLite metadata database and ledger under ``--home``, default ``.bench/n<N>-v<V>``). The run goes through
   ``ordersync.airflow.localrun.run_dag_locally``: a runner process of its own, whose executor shutdown is bounded,
   whose output (Airflow's log lines) goes to ``<home>/airflow/airflow.log``, and which is stopped, with
   every process it started, after ``--run-timeout`` seconds (default 900 + 0.3 s per order).
3. Lets the vendors ship ``--ship-fraction`` (default 0.1) of the vendor orders, with tracking numbers, then
   runs ``tracking_sync``.
4. Runs both DAGs a second time with no changes (expect 0 vendor writes and 0 merchant writes).

Reported per DAG run: wall time (the ``dag.test`` call in the runner; ``runner_seconds`` adds the runner's
interpreter start and DAG parsing), orders/s, the lower bound (below) and bound/achieved,
API calls (from the stores' own request logs) split into merchant reads / merchant writes / vendor reads /
vendor writes and per pushed order, THROTTLED (Shopify) and 429 (WooCommerce) answers, task instances,
peak RSS of the task processes, and correctness facts (every pair pushed exactly once, shipments written).

Lower bound (seconds), from latency L, the allowed concurrency and the rate limits only (no CPU, no Airflow):

* a Shopify store's cost term: ``max(0, points charged - bucket) / restore_rate`` (points charged = the
  actual query cost of the answered requests; the bucket starts full);
* ``order_sync`` = merchant fetch + vendor phase. Merchant fetch = ``max(pages x L, cost term)``: pages
  follow a cursor, so they are sequential. Vendor phase: per vendor ``t_v = reads_v x L +
  ceil(writes_v / c_v) x L`` (``c_v`` = the concurrency allowed for that platform: ``ORDERSYNC_SHOPIFY_CONCURRENCY``
  / ``ORDERSYNC_WOO_CONCURRENCY``), for Shopify at least its cost term; the phase is at least the longest vendor
  and at least ``sum(t_v) / P`` with P task slots (``--parallelism``);
* ``tracking_sync`` = ``max(max_v reads_v x L, (sum_v reads_v + merchant requests) x L / P, merchant cost
  term)``: each vendor's task reads its pages one after the other, all tasks share the merchant's bucket.

Requests answered THROTTLED/429 are not counted as work in the bound. The ratio is ``bound / achieved``
(1.0 = as fast as the stores allow).

Peak RSS: a thread samples ``/proc/*/status`` ``VmHWM`` (the kernel's high-water mark of resident memory) every
50 ms for every process titled ``airflow worker -- <task instance id>`` (the Task SDK's task runner process);
the figure is the largest value seen for each task instance (a lower bound of the true peak if a process
grew in its last 50 ms).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SKUS_PER_VENDOR = 10
MULTI_VENDOR_EVERY = 5
BLANK_CONF = {"order_ids": [], "vendors": [], "dry_run": False}


# ======================================================================================================
# The sandbox process: seeds and serves the stores, answers commands on stdin (one JSON object a line).
# ======================================================================================================
def _sandbox_worker() -> None:
    sys.path.insert(0, str(ROOT / "sandbox"))
    from ordersync_sandbox import Sandbox
    from ordersync_sandbox.shopify import ShopifyStore

    class MeteredShopify(ShopifyStore):
        """A Shopify store that also counts THROTTLED answers and the points it charged (actual cost)."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.throttled_answers = 0
            self.points = 0.0

        def graphql(
            self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
        ) -> dict[str, Any]:
            payload = super().graphql(query, variables, operation_name)
            codes = {
                (e.get("extensions") or {}).get("code")
                for e in payload.get("errors") or []
                if isinstance(e, dict)
            }
            with self.meta_lock:
                if "THROTTLED" in codes:
                    self.throttled_answers += 1
                else:
                    cost = ((payload.get("extensions") or {}).get("cost") or {}).get("actualQueryCost")
                    self.points += float(cost or 0)
            return payload

    sandbox = Sandbox()
    info: dict[str, Any] = {}

    def seed(cmd: dict[str, Any]) -> dict[str, Any]:
        n, v, latency = int(cmd["orders"]), int(cmd["vendors"]), float(cmd["latency"])
        bucket, restore = float(cmd["bucket"]), float(cmd["restore"])
        merchant = MeteredShopify(
            "merchant", token="shpat_bench_merchant", bucket_size=bucket, restore_rate=restore
        )
        sandbox.add_store(merchant)
        env = dict([sandbox.connection_env(merchant, "ordersync_merchant")])
        vendors, stores = [], []
        for i in range(v):
            name = f"Vendor {i:02d}"
            conn_id = f"ordersync_bench_v{i:02d}"
            if i % 2 == 0:
                store = MeteredShopify(
                    f"v{i:02d}", token=f"shpat_bench_{i:02d}", bucket_size=bucket, restore_rate=restore
                )
                sandbox.add_store(store)
                for k in range(SKUS_PER_VENDOR):
                    store.add_product(
                        f"{name} item {k}", sku=f"V{i:02d}-SKU-{k:02d}", price=f"{10 + k}.00", vendor=name
                    )
                platform_name = "shopify"
            else:
                store = sandbox.add_woo(f"v{i:02d}", key=f"ck_bench_{i:02d}", secret=f"cs_bench_{i:02d}")
                for k in range(SKUS_PER_VENDOR):
                    store.add_product(f"{name} item {k}", f"V{i:02d}-SKU-{k:02d}", f"{10 + k}.00")
                platform_name = "woocommerce"
            stores.append(store)
            vendors.append(
                {
                    "vendor": name,
                    "platform": platform_name,
                    "conn_id": conn_id,
                    "location_id": None,
                    "enabled": True,
                }
            )
            env.update([sandbox.connection_env(store, conn_id)])
        expected: dict[str, list[str]] = {s.name: [] for s in stores}
        address = {
            "firstName": "Jane",
            "lastName": "Buyer",
            "address1": "1 Main St",
            "city": "Springfield",
            "provinceCode": "IL",
            "zip": "62701",
            "countryCodeV2": "US",
            "phone": "+15550002222",
        }
        customer = {
            "firstName": "Jane",
            "lastName": "Buyer",
            "email": "jane@example.net",
            "phone": "+15550001111",
        }
        from datetime import datetime, timedelta

        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n + 60)
        for j in range(n):
            placed = (start + timedelta(seconds=j)).strftime("%Y-%m-%dT%H:%M:%SZ")  # one order a second
            owners = [j % v] + ([(j + 1) % v] if v > 1 and j % MULTI_VENDOR_EVERY == 0 else [])
            lines = [
                {
                    "title": f"Vendor {i:02d} item {j % SKUS_PER_VENDOR}",
                    "sku": f"V{i:02d}-SKU-{j % SKUS_PER_VENDOR:02d}",
                    "vendor": f"Vendor {i:02d}",
                    "quantity": 1 + j % 3,
                    "originalUnitPriceSet": {
                        "shopMoney": {"amount": f"{10 + j % SKUS_PER_VENDOR}.00", "currencyCode": "USD"}
                    },
                }
                for i in owners
            ]
            order = merchant.add_order(
                displayFinancialStatus="PAID",
                email="jane@example.net",
                phone="+15550001111",
                customer=dict(customer),
                shippingAddress=dict(address),
                billingAddress=dict(address),
                note=f"bench order {j}",
                tags=["bench"],
                currencyCode="USD",
                lineItems=lines,
                createdAt=placed,
                updatedAt=placed,
            )
            for i in owners:
                expected[stores[i].name].append(f"ordersync-{order['legacyResourceId']}")
        for store in sandbox.stores.values():
            store.latency = latency
        env["AIRFLOW_VAR_ORDERSYNC_VENDORS"] = json.dumps(vendors)
        info.update(stores=stores, merchant=merchant, expected=expected, vendors=vendors)
        return {"env": env, "vendors": vendors, "pairs": sum(len(x) for x in expected.values())}

    def stats(_cmd: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, store in sandbox.stores.items():
            log = store.log()
            throttled = getattr(store, "throttled_answers", 0) + sum(1 for e in log if e.get("status") == 429)
            ops = Counter(e.get("operation") or "?" for e in log)
            out[name] = {
                "platform": store.platform,
                "writes": sum(1 for e in log if e.get("write")),
                "reads": sum(1 for e in log if not e.get("write")),
                "throttled": throttled,
                "points": round(getattr(store, "points", 0.0), 1),
                "operations": dict(ops),
            }
        return out

    def reset(_cmd: dict[str, Any]) -> dict[str, Any]:
        for store in sandbox.stores.values():
            store.clear_log()
            with store.meta_lock:
                if hasattr(store, "throttled_answers"):
                    store.throttled_answers = 0
                    store.points = 0.0
        return {"ok": True}

    def ship(cmd: dict[str, Any]) -> dict[str, Any]:
        """Vendors ship every k-th of their orders (k = 1 / fraction) with one tracking number each."""
        fraction = float(cmd["fraction"])
        shipped = 0
        for store in info["stores"]:
            orders = list(store.orders)
            picked = [
                o for idx, o in enumerate(orders) if fraction > 0 and idx % max(1, round(1 / fraction)) == 0
            ]
            for o in picked:
                number = f"1ZBENCH{store.name.upper()}{o['id'] if store.platform == 'woocommerce' else o['legacyResourceId']}"
                if store.platform == "shopify":
                    store.fulfill_order(o["id"], company="UPS", number=number)
                else:
                    store.add_tracking(o["id"], provider="UPS", number=number)
                shipped += 1
        return {"shipped": shipped}

    def facts(_cmd: dict[str, Any]) -> dict[str, Any]:
        """Every expected (order, vendor) pair exists exactly once in the vendor store, nothing else does."""
        duplicates = missing = unexpected = 0
        for store in info["stores"]:
            if store.platform == "shopify":
                markers = Counter(o.get("sourceIdentifier") for o in list(store.orders))
            else:
                markers = Counter(
                    next(
                        (
                            m.get("value")
                            for m in o.get("meta_data") or []
                            if m.get("key") == "_ordersync_marker"
                        ),
                        None,
                    )
                    for o in list(store.orders)
                )
            want = set(info["expected"][store.name])
            duplicates += sum(c - 1 for c in markers.values() if c > 1)
            missing += len(want - set(markers))
            unexpected += len(set(markers) - want)
        fulfillments = sum(len(o.get("fulfillments") or []) for o in list(info["merchant"].orders))
        return {
            "pairs_expected": sum(len(x) for x in info["expected"].values()),
            "duplicates": duplicates,
            "missing": missing,
            "unexpected": unexpected,
            "merchant_fulfillments": fulfillments,
        }

    commands = {"seed": seed, "stats": stats, "reset": reset, "ship": ship, "facts": facts}
    for raw in sys.stdin:
        cmd = json.loads(raw)
        if cmd["cmd"] == "stop":
            break
        try:
            answer = commands[cmd["cmd"]](cmd)
        except Exception as exc:  # report it to the driver, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    sandbox.stop()


class SandboxProcess:
    def __init__(self, log_path: Path) -> None:
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sandbox-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=str(ROOT),
        )

    def call(self, cmd: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the sandbox process died; see {self.log.name}")
        answer = json.loads(line)
        if "error" in answer:
            raise SystemExit(f"sandbox {cmd}: {answer['error']}")
        return answer

    def stop(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin:
                self.proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
                self.proc.stdin.flush()
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


# ======================================================================================================
# Peak RSS of the task processes
# ======================================================================================================
class RssSampler(threading.Thread):
    TITLE = re.compile(rb"^airflow worker -- ([0-9a-f-]{36})")

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.peaks: dict[str, int] = {}  # task instance id -> VmHWM in kB
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        m = self.TITLE.match(f.read(120))
                    if not m:
                        continue
                    with open(f"/proc/{pid}/status", "rb") as f:
                        for line in f:
                            if line.startswith(b"VmHWM:"):
                                kb = int(line.split()[1])
                                ti = m.group(1).decode()
                                self.peaks[ti] = max(self.peaks.get(ti, 0), kb)
                                break
                except OSError:
                    continue
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()


# ======================================================================================================
# Figures
# ======================================================================================================
def _concurrency() -> dict[str, int]:
    from ordersync.platforms import registry

    return {name: registry.get(name).concurrency() for name in registry.names()}


def _cost_term(store: dict[str, Any], bucket: float, restore: float) -> float:
    if store["platform"] != "shopify":
        return 0.0
    return max(0.0, store["points"] - bucket) / restore


def _work(store: dict[str, Any]) -> tuple[int, int]:
    """(reads, writes) that did work: THROTTLED / 429 answers are not work."""
    reads, writes = store["reads"], store["writes"]
    throttled = store["throttled"]
    take = min(throttled, reads)  # throttled answers are counted against reads first (queries back off)
    return reads - take, max(0, writes - (throttled - take))


def order_sync_bound(stats: dict[str, Any], args: argparse.Namespace, conc: dict[str, int]) -> dict[str, Any]:
    L, P = args.latency, args.parallelism
    m = stats["merchant"]
    pages, _ = _work(m)
    fetch = max(pages * L, _cost_term(m, args.bucket, args.restore))
    per_vendor = {}
    for name, s in stats.items():
        if name == "merchant":
            continue
        reads, writes = _work(s)
        t = reads * L + math.ceil(writes / conc[s["platform"]]) * L
        per_vendor[name] = max(t, _cost_term(s, args.bucket, args.restore))
    phase = max(max(per_vendor.values(), default=0.0), sum(per_vendor.values()) / P)
    slowest = max(per_vendor, key=per_vendor.get) if per_vendor else None
    return {
        "seconds": round(fetch + phase, 2),
        "merchant_fetch": round(fetch, 2),
        "vendor_phase": round(phase, 2),
        "slowest_vendor": slowest,
        "slowest_vendor_seconds": round(per_vendor.get(slowest, 0.0), 2),
    }


def tracking_sync_bound(stats: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    L, P = args.latency, args.parallelism
    m = stats["merchant"]
    m_reads, m_writes = _work(m)
    vendor_reads = {n: sum(_work(s)) for n, s in stats.items() if n != "merchant"}
    longest = max(vendor_reads.values(), default=0) * L
    spread = (sum(vendor_reads.values()) + m_reads + m_writes) * L / P
    cost = _cost_term(m, args.bucket, args.restore)
    return {
        "seconds": round(max(longest, spread, cost), 2),
        "longest_vendor_reads": round(longest, 2),
        "all_requests_over_slots": round(spread, 2),
        "merchant_cost": round(cost, 2),
    }


def api_figures(stats: dict[str, Any], pushed: int) -> dict[str, Any]:
    m = stats["merchant"]
    vendors = [s for n, s in stats.items() if n != "merchant"]
    calls = {
        "merchant_reads": m["reads"],
        "merchant_writes": m["writes"],
        "vendor_reads": sum(s["reads"] for s in vendors),
        "vendor_writes": sum(s["writes"] for s in vendors),
    }
    calls["total"] = sum(calls.values())
    per = {k: round(v / pushed, 3) for k, v in calls.items()} if pushed else None
    return {
        "calls": calls,
        "per_pushed_order": per,
        "throttled": {"merchant": m["throttled"], "vendors": sum(s["throttled"] for s in vendors)},
        "merchant_points": m["points"],
    }


def _outcomes(run_key: str) -> tuple[Counter, int]:
    from ordersync.ledger import Ledger
    from ordersync.paths import default_ledger_url

    rows = Ledger(default_ledger_url()).decisions_for_run(run_key)
    return Counter(r["outcome"] for r in rows), len({r["merchant_order_id"] for r in rows})


def run_dag(
    dag_id: str,
    sandbox: SandboxProcess,
    sampler: RssSampler,
    args: argparse.Namespace,
    conc: dict[str, int],
    airflow_log: Path,
) -> dict[str, Any]:
    from datetime import datetime

    from ordersync.airflow.localrun import LocalRunError, run_dag_locally

    sandbox.call("reset")
    try:
        run = run_dag_locally(
            dag_id,
            dict(BLANK_CONF),
            timeout_s=args.run_timeout,
            log_path=airflow_log,
            dag_folder=ROOT / "dags",
        )
    except LocalRunError as exc:
        raise SystemExit(f"✗ {exc}") from None
    for line in run.forced_shutdown + run.leftovers:
        print(f"  ⚠ Airflow left a process behind, ended by the benchmark: {line}", flush=True)
    wall = run.seconds  # the dag.test call, as before: the runner's start-up is not in it
    time.sleep(0.2)  # the sampler's last look
    stats = sandbox.call("stats")
    tis = run.task_instances
    by_task = Counter(ti["task_id"] for ti in tis)
    rss = {}
    for ti in tis:
        kb = sampler.peaks.get(ti["id"])
        if kb:
            label = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            rss[label] = round(kb / 1024, 1)
    durations: dict[str, float] = {}
    for ti in tis:
        if ti["start_date"] and ti["end_date"]:
            took = (
                datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])
            ).total_seconds()
            durations[ti["task_id"]] = max(durations.get(ti["task_id"], 0.0), took)
    outcomes, orders = _outcomes(f"{dag_id}/{run.run_id}")
    pushed = outcomes.get("pushed", 0) if dag_id == "order_sync" else outcomes.get("written", 0)
    bound = (
        order_sync_bound(stats, args, conc) if dag_id == "order_sync" else tracking_sync_bound(stats, args)
    )
    result = {
        "state": run.state,
        "wall_seconds": round(wall, 2),
        "runner_seconds": run.total_seconds,
        "orders": orders,
        "orders_per_second": round(orders / wall, 2) if wall else None,
        "outcomes": dict(outcomes),
        "bound": bound,
        "bound_over_achieved": round(bound["seconds"] / wall, 3) if wall else None,
        "api": api_figures(stats, pushed),
        "task_instances": len(tis),
        "task_instances_by_task": dict(by_task),
        "task_peak_rss_mb": max(rss.values()) if rss else None,
        "task_peak_rss_by_task_mb": {
            k: max(v for kk, v in rss.items() if kk.split("[")[0] == k)
            for k in sorted({k.split("[")[0] for k in rss})
        },
        "tasks_sampled": len(rss),
        "task_seconds_longest_by_task": {k: round(v, 2) for k, v in sorted(durations.items())},
    }
    return result


def parse_times() -> dict[str, float]:
    """Milliseconds for the DAG processor to parse each DAG file (median of 3, in a fresh interpreter that has
    already imported Airflow: what the DAG processor pays per file)."""
    code = (
        "import time, json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    best = []\n"
        "    for _ in range(3):\n"
        "        for mod in [m for m in sys.modules if m.startswith(('ordersync', 'unusual_prefix'))]:\n"
        "            del sys.modules[mod]\n"
        "        t = time.perf_counter(); bag = DagBag(dag_folder=path)\n"
        "        best.append((time.perf_counter() - t) * 1000)\n"
        "        assert not bag.import_errors, bag.import_errors\n"
        "    out[path.rsplit('/', 1)[-1]] = round(sorted(best)[1], 1)\n"
        "print(json.dumps(out))\n"
    )
    files = [str(ROOT / "dags" / f) for f in ("order_sync.py", "tracking_sync.py")]
    done = subprocess.run(
        [sys.executable, "-c", code, *files], capture_output=True, text=True, env=os.environ.copy()
    )
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}  # type: ignore[dict-item]
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
    }


# ======================================================================================================
def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(args.home or ROOT / ".bench" / f"n{args.orders}-v{args.vendors}").resolve() / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    for path in (ROOT / "plugins", ROOT):
        sys.path.insert(0, str(path))
    from ordersync.paths import local_airflow

    os.environ.update(
        local_airflow(home),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=str(args.parallelism),
    )
    os.environ.pop("AIRFLOW_CONN_ORDERSYNC_LEDGER", None)
    os.environ.pop("AIRFLOW_VAR_ORDERSYNC_SETTINGS", None)
    from ordersync.airflow.localrun import LocalRunError, api_server, migrate_metadata_db

    airflow_log = home / "airflow.log"
    print(f"• benchmark N={args.orders} V={args.vendors} latency={args.latency}s home={home}", flush=True)
    print(f"• Airflow's own log lines go to {airflow_log}", flush=True)
    info = machine()
    print("• preparing Airflow's metadata database (SQLite) in", home, flush=True)
    try:
        migrate_metadata_db()
    except LocalRunError as exc:
        raise SystemExit(str(exc)) from None
    sandbox = SandboxProcess(home / "sandbox.log")
    sampler = RssSampler()
    try:
        t = time.monotonic()
        seeded = sandbox.call(
            "seed",
            orders=args.orders,
            vendors=args.vendors,
            latency=args.latency,
            bucket=args.bucket,
            restore=args.restore,
        )
        print(
            f"• seeded {args.orders} merchant orders, {seeded['pairs']} (order, vendor) pairs, "
            f"{args.vendors} vendors in {time.monotonic() - t:.1f}s",
            flush=True,
        )
        os.environ.update(seeded["env"])
        conc = _concurrency()
        results: dict[str, Any] = {
            "orders": args.orders,
            "vendors": args.vendors,
            "pairs": seeded["pairs"],
            "config": {
                "latency_seconds": args.latency,
                "shopify_bucket": args.bucket,
                "shopify_restore_per_second": args.restore,
                "parallelism": args.parallelism,
                "ship_fraction": args.ship_fraction,
                "push_concurrency": conc,
            },
            "machine": info,
            "dag_parse_ms": parse_times(),
            "runs": {},
        }
        sampler.start()
        with api_server(home / "api-server.log") as url:
            print(f"• Airflow API server on {url}", flush=True)
            for label in ("first", "second"):
                run: dict[str, Any] = {}
                print(f"• {label} run: order_sync …", flush=True)
                run["order_sync"] = run_dag("order_sync", sandbox, sampler, args, conc, airflow_log)
                _print_run("order_sync", run["order_sync"])
                facts = sandbox.call("facts")
                if label == "first":
                    shipped = sandbox.call("ship", fraction=args.ship_fraction)["shipped"]
                    print(f"• vendors shipped {shipped} vendor order(s)", flush=True)
                    run["shipped_by_vendors"] = shipped
                print(f"• {label} run: tracking_sync …", flush=True)
                run["tracking_sync"] = run_dag("tracking_sync", sandbox, sampler, args, conc, airflow_log)
                _print_run("tracking_sync", run["tracking_sync"])
                run["facts"] = {
                    **facts,
                    "merchant_fulfillments": sandbox.call("facts")["merchant_fulfillments"],
                }
                results["runs"][label] = run
        results["checks"] = checks(results)
        print("• checks:", json.dumps(results["checks"]), flush=True)
        return results
    finally:
        sampler.stop()
        sandbox.stop()


def checks(results: dict[str, Any]) -> dict[str, bool]:
    first, second = results["runs"]["first"], results["runs"]["second"]
    f = second["facts"]
    return {
        "every_pair_pushed_exactly_once": f["duplicates"] == 0 and f["missing"] == 0 and f["unexpected"] == 0,
        "first_run_pushed_every_pair": first["order_sync"]["outcomes"].get("pushed", 0) == results["pairs"],
        "every_shipment_written_once": f["merchant_fulfillments"] == first.get("shipped_by_vendors"),
        "second_run_no_vendor_writes": second["order_sync"]["api"]["calls"]["vendor_writes"] == 0,
        "second_run_no_merchant_writes": second["tracking_sync"]["api"]["calls"]["merchant_writes"] == 0,
        "all_runs_succeeded": all(
            r[d]["state"] == "success" for r in (first, second) for d in ("order_sync", "tracking_sync")
        ),
    }


def _print_run(name: str, r: dict[str, Any]) -> None:
    c = r["api"]["calls"]
    print(
        f"  {name}: {r['state']} in {r['wall_seconds']}s ({r['orders_per_second']} orders/s); bound "
        f"{r['bound']['seconds']}s → ratio {r['bound_over_achieved']}; calls {c}; per pushed "
        f"{r['api']['per_pushed_order']}; throttled {r['api']['throttled']}; tasks {r['task_instances']}; "
        f"peak RSS {r['task_peak_rss_mb']} MB; outcomes {r['outcomes']}",
        flush=True,
    )


def table(path: Path) -> str:
    """The results file as a Markdown table (one row per size and DAG run)."""
    data = json.loads(path.read_text())
    head = [
        "N",
        "V",
        "run",
        "DAG",
        "state",
        "wall s",
        "orders/s",
        "bound s",
        "bound/achieved",
        "merchant reads/po",
        "vendor reads/po",
        "vendor writes/po",
        "calls/po",
        "THROTTLED/429",
        "tasks",
        "peak RSS MB",
    ]
    rows = []
    for key in sorted(data, key=lambda k: (data[k]["orders"], data[k]["vendors"])):
        r = data[key]
        for label in ("first", "second"):
            for dag in ("order_sync", "tracking_sync"):
                x = r["runs"][label][dag]
                per = x["api"]["per_pushed_order"] or {}
                c = x["api"]["calls"]
                rows.append(
                    [
                        r["orders"],
                        r["vendors"],
                        label,
                        dag,
                        x["state"],
                        x["wall_seconds"],
                        x["orders_per_second"],
                        x["bound"]["seconds"],
                        x["bound_over_achieved"],
                        per.get("merchant_reads", f"({c['merchant_reads']})"),
                        per.get("vendor_reads", f"({c['vendor_reads']})"),
                        per.get("vendor_writes", f"({c['vendor_writes']})"),
                        per.get("total", f"({c['total']})"),
                        x["api"]["throttled"]["merchant"] + x["api"]["throttled"]["vendors"],
                        x["task_instances"],
                        x["task_peak_rss_mb"],
                    ]
                )
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--webhooks" in argv:  # event-driven latency on the real stack: scripts/bench_webhooks.py
        from bench_webhooks import main as webhooks_main

        return webhooks_main([a for a in argv if a != "--webhooks"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--vendors", type=int, default=5)
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds every store waits before answering"
    )
    parser.add_argument("--bucket", type=float, default=2000.0, help="Shopify cost bucket size (points)")
    parser.add_argument("--restore", type=float, default=100.0, help="Shopify restore rate (points/s)")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor parallelism (task slots)")
    parser.add_argument("--ship-fraction", type=float, default=0.1)
    parser.add_argument(
        "--run-timeout",
        type=float,
        help="seconds one DAG run may take before the benchmark stops it and fails "
        "(default 900 + 0.3 s per order)",
    )
    parser.add_argument("--home", help="working directory (default .bench/n<N>-v<V>)")
    parser.add_argument(
        "--json",
        default=str(ROOT / "docs" / "benchmarks.json"),
        help="results file; this size's entry is added or replaced",
    )
    parser.add_argument("--table", metavar="JSON", help="print a results file as a Markdown table and exit")
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="measure event-driven latency on the real stack instead (scripts/bench_webhooks.py; "
        "--webhooks --help lists its options)",
    )
    parser.add_argument("--sandbox-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sandbox_worker:
        _sandbox_worker()
        return 0
    if args.table:
        print(table(Path(args.table)))
        return 0
    if args.run_timeout is None:
        args.run_timeout = 900 + 0.3 * args.orders
    results = benchmark(args)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[f"N={args.orders},V={args.vendors}"] = results
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"• results written to {path}")
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
