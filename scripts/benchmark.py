"""Benchmark: ordersync's throughput against the vendor-API bound, calls per order, task count, memory.

    python scripts/benchmark.py --orders 1000 --vendors 5          # or: make bench ORDERS=1000 VENDORS=5
    python scripts/benchmark.py --orders 1000 --vendors 5 --ledger postgresql   # the production ledger
    python scripts/benchmark.py --table docs/benchmarks.json       # the results as Markdown tables
    python scripts/benchmark.py --compare OLD.json NEW.json        # before/after, per DAG run and per phase
    python scripts/benchmark.py --webhooks --executor both         # event-driven latency: scripts/bench_webhooks.py

What it does, for one size (N merchant orders across V vendors):

1. Starts the sandbox stores in a **separate process** (so their memory never shows up in the task processes
   that the LocalExecutor forks): a Shopify merchant and V vendors, even-numbered on Shopify,
   odd-numbered on WooCommerce, each with a 10-SKU catalog. Every store answers after ``--latency`` seconds
   (default 0.05); Shopify stores charge the real cost limits (bucket 2,000 points, 100 points/s restore) and
   run bulk operations at the sandbox's documented rate (``store.bulk_objects_per_second``, 1,000 objects/s
   after a 0.1 s start, ``sandbox/ordersync_sandbox/shopify_bulk.py``).
   The merchant holds a backlog of N paid orders (placed one a second, ending a minute ago); each has one
   line of vendor ``i mod V``, and every fifth
   also a line of the next vendor (so there are about 1.2 N (order, vendor) pairs to push).
2. Runs ``order_sync`` through Airflow (``dag.test(use_executor=True)`` on the LocalExecutor, parallelism
   ``--parallelism``, default 8 = the DAG's ``max_active_tis_per_dagrun``; the API server on loopback;
   SQLite metadata database under ``--home``, default ``.bench/n<N>-v<V>`` (``-postgresql`` appended with that
   ledger)). The ordersync ledger is SQLite in the same home, or with ``--ledger postgresql`` a fresh
   PostgreSQL database created for the benchmark on ``--postgres-url``'s server (given to the tasks as
   connection ``ordersync_ledger``) and dropped after it (``--keep-ledger`` keeps it). The run goes through
   ``ordersync.airflow.localrun.run_dag_locally``: a runner process of its own, whose executor shutdown is bounded,
   whose output (Airflow's log lines) goes to ``<home>/airflow/airflow.log``, and which is stopped, with
   every process it started, after ``--run-timeout`` seconds (default 900 + 0.3 s per order).
   ``fetch_orders`` reads a backlog above ``ORDERSYNC_BULK_THRESHOLD`` (default 2,000; ``--bulk-threshold``
   sets it for the runs) with one bulk operation, a smaller one page by page.
3. Lets the vendors ship ``--ship-fraction`` (default 0.1) of the vendor orders, with tracking numbers, then
   runs ``tracking_sync``.
4. Runs both DAGs a second time with no changes (expect 0 vendor writes and 0 merchant writes).

Reported per DAG run: wall time (the ``dag.test`` call in the runner; ``runner_seconds`` adds the runner's
interpreter start and DAG parsing), orders/s, the lower bound (below) and bound/achieved,
API calls (from the stores' own request logs) split into merchant reads / merchant writes / vendor reads /
vendor writes and per pushed order, the merchant's requests by operation, THROTTLED (Shopify) and 429
(WooCommerce) answers split merchant / vendors, merchant points per merchant order read (order_sync: points
charged by the merchant store / orders its ``orders`` pages and completed bulk operations held) and merchant
calls per written shipment (tracking_sync: merchant requests, THROTTLED answers included / shipments written),
order_sync's fetch path (``paged``, ``bulk``, ``bulk+paged``: from the operation names the merchant store saw
and the bulk operations it recorded), task instances, per task_id the count, sum, longest and span (first
start to last end) of the task instances' durations (from the runner's metadata database: the phase table),
peak RSS of the task processes, and correctness facts (every pair pushed exactly once, shipments written).
The results file keeps one entry per (N, V, ledger): ``N=…,V=…`` for SQLite (the key older files use) and
``N=…,V=…,ledger=postgresql`` beside it.

Lower bound (seconds), from latency L, the allowed concurrency and the rate limits only (no CPU, no Airflow):

* a Shopify store's cost term: ``max(0, points charged - bucket) / restore_rate`` (points charged = the
  actual query cost of the answered requests; the bucket starts full);
* ``order_sync`` = merchant fetch + vendor phase.

  - Merchant fetch = ``max(requests in sequence x L + bulk operation time + lines x --bulk-line-seconds, cost
    term)``. Paged (backlog at or below the threshold): every request is in sequence (the count, then pages
    that follow a cursor), no operation: ``max(pages x L, cost term)`` as before, the cost term dominating.
    Bulk: the count, the mutation, the one poll that sees the operation finished and the download are in
    sequence (the other polls overlap the operation); the operation takes ``start_delay + objects /
    objects_per_second`` (objects = the JSONL lines = orders + line items), as the sandbox records it; the
    download is one request plus ``lines x --bulk-line-seconds``, 0 by default (the bound counts no CPU, and
    the file comes over loopback in one answer). The cost term is ~0 (only the mutation and polls are
    charged). Not in the bound but reported (``poll_schedule_wait_seconds``): how late ``bulk.py``'s backoff
    schedule (0.25 s, x1.5, at most 10 s) sees the operation done.
  - Vendor phase: per vendor ``t_v = reads_v x L + ceil(writes_v / c_v) x L`` (``c_v`` = the concurrency
    allowed for that platform: ``ORDERSYNC_SHOPIFY_CONCURRENCY`` / ``ORDERSYNC_WOO_CONCURRENCY``), for Shopify
    at least its cost term; the phase is at least the longest vendor and at least ``sum(t_v) / P`` with P task
    slots (``--parallelism``);
* ``tracking_sync`` with a ``write_merchant_fulfillments`` task = vendor reads + merchant work. Vendor reads:
  ``max(max_v t_v, sum_v t_v / P)`` with ``t_v = reads_v x L`` (a Shopify vendor at least its cost term):
  each vendor's task reads its pages one after the other and only its own store. Merchant work, by one task's
  one client: ``max(merchant requests x L / ORDERSYNC_SHOPIFY_CONCURRENCY, merchant cost term)``. Without
  that task (the DAG before issue 14, every vendor task writing to the merchant): ``max(max_v reads_v x L,
  (sum_v reads_v + merchant requests) x L / P, merchant cost term)``; ``bound.model`` says which.

Requests answered THROTTLED/429 are not counted as work in the bound. The ratio is ``bound / achieved``
(1.0 = as fast as the stores allow); per phase, the bound's term for that task (fetch_orders: the merchant
fetch, push_vendor_orders: the vendor phase, sync_vendor_tracking: the vendor reads,
write_merchant_fulfillments: the merchant work) over its span.

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
BULK_DOWNLOAD_OPERATION = "bulk-operation-output"  # the sandbox's operation label for a bulk file download
MERCHANT_WRITER = "write_merchant_fulfillments"  # tracking_sync's one task for the merchant's side
BULK_THRESHOLD_ENV = "ORDERSYNC_BULK_THRESHOLD"
POSTGRES_SERVER_URL = os.environ.get(
    "ORDERSYNC_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)  # the server the tests and scripts/stack.py use
LEDGERS = ("sqlite", "postgresql")
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
        """A Shopify store that also counts THROTTLED answers, the points it charged (actual cost) and the
        orders its paged ``orders`` answers held (a bulk operation's orders are counted from its record)."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.throttled_answers = 0
            self.points = 0.0
            self.orders_paged = 0
            self.bulk_from = 0  # bulk operations before this index belong to earlier DAG runs

        def graphql(
            self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
        ) -> dict[str, Any]:
            payload = super().graphql(query, variables, operation_name)
            codes = {
                (e.get("extensions") or {}).get("code")
                for e in payload.get("errors") or []
                if isinstance(e, dict)
            }
            orders = (payload.get("data") or {}).get("orders")
            with self.meta_lock:
                if "THROTTLED" in codes:
                    self.throttled_answers += 1
                else:
                    cost = ((payload.get("extensions") or {}).get("cost") or {}).get("actualQueryCost")
                    self.points += float(cost or 0)
                if isinstance(orders, dict) and isinstance(orders.get("nodes"), list):
                    self.orders_paged += len(orders["nodes"])
            return payload

        def bulk_record(self) -> list[dict[str, Any]]:
            """The bulk query operations created since the last reset, from the store's own records: status,
            objects (JSONL lines: orders + line items), and the seconds from creation to the end at the
            store's documented rate (``start_delay + objects / objects_per_second``)."""
            out = []
            with self.lock:
                for op in self.bulk_operations[self.bulk_from :]:
                    op = self._bulk_advance(op)
                    ended = op["_ended_at"]
                    if ended is None and op["_cancel_done_at"] is not None:
                        ended = op["_cancel_done_at"]
                    out.append(
                        {
                            "id": op["id"],
                            "status": op["status"],
                            "error_code": op["errorCode"],
                            "objects": len(op["_lines"]),
                            "objects_written": int(op["objectCount"] or 0),
                            "root_objects": int(op["rootObjectCount"] or 0),
                            "objects_per_second": op["_rate"],
                            "start_delay_seconds": round(op["_start"] - op["_t0"], 3),
                            "seconds": round(ended - op["_t0"], 3) if ended is not None else None,
                        }
                    )
            return out

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
        return {
            "env": env,
            "vendors": vendors,
            "pairs": sum(len(x) for x in expected.values()),
            "bulk": {  # the merchant's bulk operations run at these documented settings (shopify_bulk.py)
                "objects_per_second": merchant.bulk_objects_per_second,
                "start_delay_seconds": merchant.bulk_start_delay,
                "max_concurrent_queries": merchant.bulk_max_concurrent_queries,
            },
        }

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
            if isinstance(store, MeteredShopify):
                bulk = store.bulk_record()
                out[name]["bulk_operations"] = bulk
                out[name]["orders_read"] = store.orders_paged + sum(
                    op["root_objects"] for op in bulk if op["status"] == "COMPLETED"
                )
        return out

    def reset(_cmd: dict[str, Any]) -> dict[str, Any]:
        for store in sandbox.stores.values():
            store.clear_log()
            if isinstance(store, MeteredShopify):
                with store.lock:
                    store.bulk_from = len(store.bulk_operations)
                with store.meta_lock:
                    store.throttled_answers = 0
                    store.points = 0.0
                    store.orders_paged = 0
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


def merchant_fetch(m: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """order_sync's merchant fetch: the path the run took (from the store's operation names and its bulk
    operation records) and its lower bound.

    Requests that follow one another, each ``L``: pages follow a cursor; a bulk read is the count, the
    mutation, the poll that sees the operation finished and the download. Polls made while the operation runs
    overlap it and are not counted; the operation itself takes ``start_delay + objects / objects_per_second``
    at the sandbox's documented rate (objects = JSONL lines = orders + line items), and the download adds
    ``lines x --bulk-line-seconds`` (default 0: the bound counts no CPU, and the file comes over loopback in
    one answer). The cost term (points charged beyond a full bucket at the restore rate) is the floor either
    way; it is what bounds a paged backlog and is ~0 for a bulk read, which only pays for the mutation and the
    polls."""
    L = args.latency
    ops = m.get("operations") or {}
    bulk = m.get("bulk_operations") or []
    reads, writes = _work(m)
    polls = ops.get("bulkOperation", 0)
    downloads = ops.get(BULK_DOWNLOAD_OPERATION, 0)
    completed = [op for op in bulk if op["status"] == "COMPLETED"]
    lines = sum(op["objects"] for op in completed) if downloads else 0
    in_sequence = max(0, reads + writes - polls) + min(polls, len(bulk))
    operation = sum(op["seconds"] or 0.0 for op in bulk)
    download = lines * args.bulk_line_seconds
    cost = _cost_term(m, args.bucket, args.restore)
    if not bulk:
        path = "paged"
    elif completed and downloads and not ops.get("orders", 0):
        path = "bulk"
    else:  # the operation gave no complete file (or a retry re-read some orders): pages too
        path = "bulk+paged"
    poll_wait = [_poll_wait(op["seconds"], L) for op in completed if op["seconds"] is not None]
    return {
        "path": path,
        "seconds": round(max(in_sequence * L + operation + download, cost), 2),
        "requests_in_sequence": in_sequence,
        "pages": ops.get("orders", 0),
        "polls": polls,
        "downloads": downloads,
        "bulk_operation_seconds": round(operation, 2),
        "bulk_lines_downloaded": lines,
        "bulk_download_line_seconds": args.bulk_line_seconds,
        "cost_term": round(cost, 2),
        # not in the bound: how late ordersync's poll schedule (bulk.py's backoff) sees the operation done
        "poll_schedule_wait_seconds": round(sum(poll_wait), 2) if poll_wait else None,
        "bulk_operations": bulk,
    }


def _poll_wait(operation_s: float, latency: float) -> float:
    """Seconds between a bulk operation's end and the poll of ``bulk.py``'s schedule that first sees it (each
    poll sleeps its delay, then waits ``latency`` for its answer)."""
    from ordersync.platforms.shopify import bulk

    t, delay = 0.0, bulk.POLL_FIRST_SECONDS
    while True:
        t += delay + latency
        if t >= operation_s:
            return t - operation_s
        delay = min(delay * bulk.POLL_FACTOR, bulk.POLL_MAX_SECONDS)


def order_sync_bound(stats: dict[str, Any], args: argparse.Namespace, conc: dict[str, int]) -> dict[str, Any]:
    L, P = args.latency, args.parallelism
    fetch = merchant_fetch(stats["merchant"], args)
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
        "seconds": round(fetch["seconds"] + phase, 2),
        "merchant_fetch": fetch["seconds"],
        "merchant_fetch_path": fetch["path"],
        "vendor_phase": round(phase, 2),
        "slowest_vendor": slowest,
        "slowest_vendor_seconds": round(per_vendor.get(slowest, 0.0), 2) if slowest else 0.0,
    }


def tracking_sync_bound(
    stats: dict[str, Any], args: argparse.Namespace, conc: dict[str, int], task_ids: set[str]
) -> dict[str, Any]:
    """With ``write_merchant_fulfillments`` in the run: the vendor tasks only read their stores (each one page
    after another, the tasks over P slots, a Shopify vendor at least its cost term), then one task does all
    the merchant's reads and writes with one client: ``max(merchant requests x L / merchant concurrency,
    merchant cost term)``. Without it (the DAG before issue 14) every vendor task also did its share of the
    merchant's requests, sharing the bucket: ``max(longest vendor, all requests x L / P, merchant cost)``."""
    L, P = args.latency, args.parallelism
    m = stats["merchant"]
    m_reads, m_writes = _work(m)
    vendors = {n: s for n, s in stats.items() if n != "merchant"}
    cost = _cost_term(m, args.bucket, args.restore)
    if MERCHANT_WRITER in task_ids:
        per_vendor = {
            n: max(sum(_work(s)) * L, _cost_term(s, args.bucket, args.restore)) for n, s in vendors.items()
        }
        phase = max(max(per_vendor.values(), default=0.0), sum(per_vendor.values()) / P)
        c = conc["shopify"]
        requests = (m_reads + m_writes) * L / c
        merchant = max(requests, cost)
        return {
            "model": "vendor reads, then one merchant writer",
            "seconds": round(phase + merchant, 2),
            "vendor_reads": round(phase, 2),
            "merchant_work": round(merchant, 2),
            "merchant_requests_over_concurrency": round(requests, 2),
            "merchant_concurrency": c,
            "merchant_cost": round(cost, 2),
        }
    vendor_reads = {n: sum(_work(s)) for n, s in vendors.items()}
    longest = max(vendor_reads.values(), default=0) * L
    spread = (sum(vendor_reads.values()) + m_reads + m_writes) * L / P
    return {
        "model": "vendor tasks share the merchant",
        "seconds": round(max(longest, spread, cost), 2),
        "longest_vendor_reads": round(longest, 2),
        "all_requests_over_slots": round(spread, 2),
        "merchant_cost": round(cost, 2),
    }


def api_figures(stats: dict[str, Any], pushed: int, dag_id: str) -> dict[str, Any]:
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
    read = m.get("orders_read", 0)
    merchant_calls = calls["merchant_reads"] + calls["merchant_writes"]  # THROTTLED answers included
    return {
        "calls": calls,
        "per_pushed_order": per,
        "throttled": {"merchant": m["throttled"], "vendors": sum(s["throttled"] for s in vendors)},
        "merchant_points": m["points"],
        "merchant_orders_read": read,
        # order_sync: what the merchant's bucket paid per order read (paged ~12.9; a bulk read ~0)
        "merchant_points_per_order": (
            round(m["points"] / read, 4) if dag_id == "order_sync" and read else None
        ),
        # tracking_sync: merchant requests (reads + writes, THROTTLED answers included) per shipment written
        "merchant_calls_per_shipment": (
            round(merchant_calls / pushed, 3) if dag_id == "tracking_sync" and pushed else None
        ),
        "merchant_points_per_shipment": (
            round(m["points"] / pushed, 2) if dag_id == "tracking_sync" and pushed else None
        ),
        "merchant_operations": dict(sorted((m.get("operations") or {}).items())),
    }


def task_seconds(tis: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task_id, from the task instances' start and end in the runner's metadata database: how many ran,
    the sum and the longest of their durations, and the span from the first start to the last end (the
    phase's own wall time when the task is mapped)."""
    from datetime import datetime

    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for ti in tis:
        if ti["start_date"] and ti["end_date"]:
            start, end = datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])
            spans.setdefault(ti["task_id"], []).append((start, end))
    out = {}
    for task_id, pairs in sorted(spans.items()):
        took = [(e - s).total_seconds() for s, e in pairs]
        out[task_id] = {
            "count": len(pairs),
            "sum": round(sum(took), 2),
            "max": round(max(took), 2),
            "span": round((max(e for _, e in pairs) - min(s for s, _ in pairs)).total_seconds(), 2),
        }
    return out


def _outcomes(run_key: str, ledger_url: str) -> tuple[Counter, int]:
    from ordersync.ledger import Ledger

    rows = Ledger(ledger_url).decisions_for_run(run_key)
    return Counter(r["outcome"] for r in rows), len({r["merchant_order_id"] for r in rows})


def run_dag(
    dag_id: str,
    sandbox: SandboxProcess,
    sampler: RssSampler,
    args: argparse.Namespace,
    conc: dict[str, int],
    airflow_log: Path,
) -> dict[str, Any]:
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
    durations = task_seconds(tis)
    outcomes, orders = _outcomes(f"{dag_id}/{run.run_id}", args.ledger_url)
    pushed = outcomes.get("pushed", 0) if dag_id == "order_sync" else outcomes.get("written", 0)
    bound = (
        order_sync_bound(stats, args, conc)
        if dag_id == "order_sync"
        else tracking_sync_bound(stats, args, conc, set(by_task))
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
        "api": api_figures(stats, pushed, dag_id),
        "task_instances": len(tis),
        "task_instances_by_task": dict(by_task),
        "task_peak_rss_mb": max(rss.values()) if rss else None,
        "task_peak_rss_by_task_mb": {
            k: max(v for kk, v in rss.items() if kk.split("[")[0] == k)
            for k in sorted({k.split("[")[0] for k in rss})
        },
        "tasks_sampled": len(rss),
        "task_seconds_longest_by_task": {k: v["max"] for k, v in durations.items()},  # as before
        "task_seconds_by_task": durations,
    }
    if dag_id == "order_sync":
        result["merchant_fetch"] = merchant_fetch(stats["merchant"], args)
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
    size = f"n{args.orders}-v{args.vendors}" + ("" if args.ledger == "sqlite" else f"-{args.ledger}")
    default_home = ROOT / ".bench" / size
    home = Path(args.home or default_home).resolve() / "airflow"
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
    if args.bulk_threshold is not None:
        os.environ[BULK_THRESHOLD_ENV] = str(args.bulk_threshold)
    from ordersync.airflow.localrun import LocalRunError, api_server, migrate_metadata_db
    from ordersync.paths import default_ledger_url
    from ordersync.platforms.shopify.bulk import bulk_threshold

    airflow_log = home / "airflow.log"
    print(
        f"• benchmark N={args.orders} V={args.vendors} ledger={args.ledger} latency={args.latency}s "
        f"home={home}",
        flush=True,
    )
    print(f"• Airflow's own log lines go to {airflow_log}", flush=True)
    info = machine()
    pg: PostgresLedger | None = None
    if args.ledger == "postgresql":
        pg = PostgresLedger(args.postgres_url)
        args.ledger_url = pg.url
        os.environ["AIRFLOW_CONN_ORDERSYNC_LEDGER"] = json.dumps(
            {"conn_type": "postgres", "extra": {"sqlalchemy_url": pg.url}}
        )
        ledger_info: dict[str, Any] = {
            "kind": "postgresql",
            "database": pg.name,
            "server": pg.safe_server,
            "server_version": pg.version,
        }
        print(f"• ordersync ledger: a fresh PostgreSQL database {pg.name} on {pg.safe_server}", flush=True)
    else:
        args.ledger_url = default_ledger_url()  # SQLite (WAL) in the Airflow home, as the DAGs default
        ledger_info = {"kind": "sqlite"}
        print(f"• ordersync ledger: SQLite {args.ledger_url}", flush=True)
    print("• preparing Airflow's metadata database (SQLite) in", home, flush=True)
    try:
        migrate_metadata_db()
    except LocalRunError as exc:
        if pg is not None:
            pg.drop()
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
            "ledger": ledger_info,
            "pairs": seeded["pairs"],
            "config": {
                "latency_seconds": args.latency,
                "shopify_bucket": args.bucket,
                "shopify_restore_per_second": args.restore,
                "parallelism": args.parallelism,
                "ship_fraction": args.ship_fraction,
                "push_concurrency": conc,
                "bulk_threshold": bulk_threshold(),
                "shopify_bulk": seeded["bulk"],
                "bulk_download_line_seconds": args.bulk_line_seconds,
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
        if pg is not None:
            if args.keep_ledger:
                print(f"• kept the ledger database {pg.name} (--keep-ledger)", flush=True)
            else:
                pg.drop()


class PostgresLedger:
    """A fresh PostgreSQL database for one benchmark's ordersync ledger, on the server ``server_url`` names
    (any database on it: the connection only creates and drops ours, as scripts/stack.py does)."""

    def __init__(self, server_url: str) -> None:
        import uuid

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self.name = f"ordersync_bench_{uuid.uuid4().hex[:10]}"
        server = make_url(server_url)
        self.safe_server = server.set(database=None).render_as_string(hide_password=True)
        self._admin = create_engine(
            server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        try:
            with self._admin.connect() as conn:
                self.version = str(conn.execute(text("SHOW server_version")).scalar())
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        except Exception as exc:
            self._admin.dispose()
            raise SystemExit(
                f"✗ --ledger postgresql: cannot create a database on {self.safe_server} "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); start PostgreSQL there or "
                "pass --postgres-url"
            ) from None
        self.url = server.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        from sqlalchemy import text

        from ordersync.ledger import Ledger

        Ledger(self.url).engine.dispose()  # the benchmark's own connections (it reads the outcomes)
        try:
            with self._admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            print(f"• dropped the ledger database {self.name}", flush=True)
        except Exception as exc:  # a leftover database is not worth failing the benchmark for
            print(f"  ⚠ could not drop the ledger database {self.name}: {exc}", flush=True)
        self._admin.dispose()


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
    c, a = r["api"]["calls"], r["api"]
    extra = ""
    if name == "order_sync":
        f = r.get("merchant_fetch") or {}
        extra = (
            f"; merchant fetch {f.get('path')} (bound {f.get('seconds')}s), "
            f"{a.get('merchant_points_per_order')} points/order"
        )
    else:
        extra = f"; {a.get('merchant_calls_per_shipment')} merchant calls/shipment"
    print(
        f"  {name}: {r['state']} in {r['wall_seconds']}s ({r['orders_per_second']} orders/s); bound "
        f"{r['bound']['seconds']}s → ratio {r['bound_over_achieved']}; calls {c}; per pushed "
        f"{a['per_pushed_order']}; throttled {a['throttled']}{extra}; tasks {r['task_instances']}; "
        f"peak RSS {r['task_peak_rss_mb']} MB; outcomes {r['outcomes']}",
        flush=True,
    )


# ======================================================================================================
# Reading results files (this version's and the older ones: no ledger, no per-task sums, no fetch path)
# ======================================================================================================
DAGS = ("order_sync", "tracking_sync")
RUNS = ("first", "second")


def entry_key(orders: int, vendors: int, ledger: str) -> str:
    """The results file's key for one size: ``N=…,V=…`` for the SQLite ledger (as every older file has it),
    ``N=…,V=…,ledger=postgresql`` beside it for the PostgreSQL ledger."""
    return f"N={orders},V={vendors}" + ("" if ledger == "sqlite" else f",ledger={ledger}")


def ledger_of(entry: dict[str, Any]) -> str:
    return (entry.get("ledger") or {}).get("kind") or "sqlite"  # files before --ledger: SQLite


def entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(data.values(), key=lambda e: (e["orders"], e["vendors"], LEDGERS.index(ledger_of(e))))


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def points_per_order(x: dict[str, Any]) -> float | None:
    """Merchant points charged per merchant order read (older files: per order with a decision, which is the
    same set for a first run)."""
    a = x["api"]
    if "merchant_points_per_order" in a:
        return a["merchant_points_per_order"]
    return round(a["merchant_points"] / x["orders"], 4) if x.get("orders") else None


def calls_per_shipment(x: dict[str, Any]) -> float | None:
    a = x["api"]
    if "merchant_calls_per_shipment" in a:
        return a["merchant_calls_per_shipment"]
    written = x["outcomes"].get("written", 0)
    c = a["calls"]
    return round((c["merchant_reads"] + c["merchant_writes"]) / written, 3) if written else None


def fetch_path(x: dict[str, Any]) -> str | None:
    """order_sync's merchant fetch path; files from before bulk reads: every fetch paged."""
    path = (x.get("merchant_fetch") or {}).get("path")
    return path or ("paged" if "merchant_fetch" in x["bound"] else None)


def phase_bounds(dag: str, x: dict[str, Any]) -> dict[str, float]:
    """The bound's terms that belong to one task_id (the phase): order_sync's merchant fetch and vendor
    phase; tracking_sync's vendor reads and merchant work, or, before write_merchant_fulfillments, the
    whole bound for sync_vendor_tracking, which then did both."""
    b = x["bound"]
    if dag == "order_sync":
        return {"fetch_orders": b["merchant_fetch"], "push_vendor_orders": b["vendor_phase"]}
    if "merchant_work" in b:
        return {"sync_vendor_tracking": b["vendor_reads"], MERCHANT_WRITER: b["merchant_work"]}
    return {"sync_vendor_tracking": b["seconds"]}


def phases(x: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task_id: count, sum, max, span and whether the wall time (span) is exact. Older files hold only
    the longest task instance (``task_seconds_longest_by_task``): exact for a task that ran once, a lower
    bound of the phase's span for a mapped one; the oldest hold no durations at all."""
    if "task_seconds_by_task" in x:
        return {k: {**v, "exact": True} for k, v in x["task_seconds_by_task"].items()}
    counts = x.get("task_instances_by_task") or {}
    out = {}
    for task_id, longest in (x.get("task_seconds_longest_by_task") or {}).items():
        n = counts.get(task_id, 1)
        out[task_id] = {
            "count": n,
            "sum": longest if n == 1 else None,
            "max": longest,
            "span": longest,
            "exact": n == 1,
        }
    return out


def _span_cell(p: dict[str, Any] | None) -> str:
    if not p:
        return "—"
    return str(p["span"]) if p["exact"] else f"≥{p['span']}"


# the columns a DAG run's row starts with, in --table and --compare
RUN_COLUMNS = ("N", "V", "ledger", "run", "DAG", "state", "wall s")

# the columns a phase row starts with, in --table and --compare
PHASE_COLUMNS = (
    "N",
    "V",
    "ledger",
    "run",
    "DAG",
    "phase (task id)",
    "task instances",
    "wall s (first start → last end)",
)


def table(path: Path) -> str:
    """The results file as Markdown: one row per (size, ledger, DAG run), then the phases (task ids)."""
    data = json.loads(path.read_text())
    head = [
        *RUN_COLUMNS,
        "orders/s",
        "bound s",
        "bound/achieved",
        "fetch",
        "merchant points/order",
        "merchant calls/shipment",
        "merchant reads/po",
        "vendor reads/po",
        "vendor writes/po",
        "calls/po",
        "THROTTLED/429 merchant / vendors",
        "tasks",
        "peak RSS MB",
    ]
    rows = []
    phase_rows = []
    for r in entries(data):
        for label in RUNS:
            for dag in DAGS:
                x = r["runs"][label][dag]
                per = x["api"]["per_pushed_order"] or {}
                c = x["api"]["calls"]
                t = x["api"]["throttled"]
                rows.append(
                    [
                        r["orders"],
                        r["vendors"],
                        ledger_of(r),
                        label,
                        dag,
                        x["state"],
                        x["wall_seconds"],
                        x["orders_per_second"],
                        x["bound"]["seconds"],
                        x["bound_over_achieved"],
                        fetch_path(x) if dag == "order_sync" else None,
                        points_per_order(x) if dag == "order_sync" else None,
                        calls_per_shipment(x) if dag == "tracking_sync" else None,
                        per.get("merchant_reads", f"({c['merchant_reads']})"),
                        per.get("vendor_reads", f"({c['vendor_reads']})"),
                        per.get("vendor_writes", f"({c['vendor_writes']})"),
                        per.get("total", f"({c['total']})"),
                        f"{t['merchant']} / {t['vendors']}",
                        x["task_instances"],
                        x["task_peak_rss_mb"],
                    ]
                )
                bounds = phase_bounds(dag, x)
                for task_id, p in sorted(phases(x).items(), key=lambda kv: _phase_order(dag, kv[0])):
                    b = bounds.get(task_id)
                    phase_rows.append(
                        [
                            r["orders"],
                            r["vendors"],
                            ledger_of(r),
                            label,
                            dag,
                            task_id,
                            p["count"],
                            _span_cell(p),
                            p["sum"],
                            p["max"],
                            b,
                            round(b / p["span"], 3) if b is not None and p["exact"] and p["span"] else None,
                        ]
                    )
    out = _markdown(head, rows)
    if phase_rows:
        out += "\n\n" + _markdown(
            [
                *PHASE_COLUMNS,
                "sum s",
                "longest s",
                "bound s",
                "bound/achieved",
            ],
            phase_rows,
        )
    return out


def _markdown(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _arrow(before: Any, after: Any) -> str:
    return f"{_cell(before)} → {_cell(after)}"


def compare(old_path: Path, new_path: Path) -> str:
    """Markdown before/after tables for the sizes both files hold: per DAG run, then per phase. A size's
    PostgreSQL row is set against the same ledger in the old file, else against its SQLite row."""
    old, new = json.loads(old_path.read_text()), json.loads(new_path.read_text())
    by_key = {(e["orders"], e["vendors"], ledger_of(e)): e for e in old.values()}
    pairs = []
    for after in entries(new):
        n, v, ledger = after["orders"], after["vendors"], ledger_of(after)
        before = by_key.get((n, v, ledger)) or by_key.get((n, v, "sqlite"))
        if before is not None:
            pairs.append((before, after))
    if not pairs:
        return f"no size is in both {old_path} and {new_path}"
    run_rows, phase_rows, notes = [], [], []
    for before, after in pairs:
        ledger = _arrow(ledger_of(before), ledger_of(after)).replace("sqlite → sqlite", "sqlite")
        ledger = ledger.replace("postgresql → postgresql", "postgresql")
        size = [after["orders"], after["vendors"], ledger]
        for label in RUNS:
            for dag in DAGS:
                b, a = before["runs"][label][dag], after["runs"][label][dag]
                tb, ta = b["api"]["throttled"], a["api"]["throttled"]
                run_rows.append(
                    size
                    + [
                        label,
                        dag,
                        _arrow(b["state"], a["state"]).replace("success → success", "success"),
                        _arrow(b["wall_seconds"], a["wall_seconds"]),
                        _arrow(b["bound"]["seconds"], a["bound"]["seconds"]),
                        _arrow(b["bound_over_achieved"], a["bound_over_achieved"]),
                        _arrow(f"{tb['merchant']} / {tb['vendors']}", f"{ta['merchant']} / {ta['vendors']}"),
                        *(
                            (_arrow(calls_per_shipment(b), calls_per_shipment(a)), "—", "—")
                            if dag == "tracking_sync"
                            else (
                                "—",
                                _arrow(points_per_order(b), points_per_order(a)),
                                _arrow(fetch_path(b), fetch_path(a)),
                            )
                        ),
                    ]
                )
                pb, pa = phases(b), phases(a)
                bb, ba = phase_bounds(dag, b), phase_bounds(dag, a)
                for task_id in sorted(set(pb) | set(pa), key=lambda t: _phase_order(dag, t)):
                    xb, xa = pb.get(task_id), pa.get(task_id)
                    rb = _ratio(bb.get(task_id), xb)
                    ra = _ratio(ba.get(task_id), xa)
                    phase_rows.append(
                        size
                        + [
                            label,
                            dag,
                            task_id,
                            _arrow(xb["count"] if xb else None, xa["count"] if xa else None),
                            f"{_span_cell(xb)} → {_span_cell(xa)}",
                            _arrow(bb.get(task_id), ba.get(task_id)),
                            _arrow(rb, ra),
                        ]
                    )
        failed = [k for k, ok in (after.get("checks") or {}).items() if not ok]
        if failed:
            notes.append(f"N={after['orders']} V={after['vendors']} {ledger_of(after)}: failed {failed}")
    out = [
        f"Before: `{old_path}`; after: `{new_path}`.",
        "",
        _markdown(
            [
                *RUN_COLUMNS,
                "bound s",
                "bound/achieved",
                "THROTTLED merchant / vendors",
                "merchant calls/shipment",
                "merchant points/order",
                "fetch",
            ],
            run_rows,
        ),
        "",
        _markdown(
            [
                *PHASE_COLUMNS,
                "bound s",
                "bound/achieved",
            ],
            phase_rows,
        ),
        "",
        "A phase's wall s is its first task instance's start to its last one's end; `≥` marks an older "
        "file's longest task instance of a mapped task (it kept no more), `—` a file without durations.",
    ]
    if notes:
        out += ["", "Checks failing after: " + "; ".join(notes)]
    return "\n".join(out)


def _ratio(bound: float | None, p: dict[str, Any] | None) -> float | None:
    if bound is None or not p or not p["exact"] or not p["span"]:
        return None
    return round(bound / p["span"], 3)


PHASE_ORDER = {
    "order_sync": ("validate_settings", "fetch_orders", "decide", "push_vendor_orders", "summary"),
    "tracking_sync": ("validate_settings", "sync_vendor_tracking", MERCHANT_WRITER, "summary"),
}


def _phase_order(dag: str, task_id: str) -> tuple[int, str]:
    """The DAG's task order; a task this list does not know comes before summary."""
    order = PHASE_ORDER.get(dag, ())
    return (2 * order.index(task_id) if task_id in order else 2 * len(order) - 3, task_id)


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
        "--ledger",
        choices=("sqlite", "postgres", "postgresql"),
        default="sqlite",
        help="the ordersync ledger: SQLite in the Airflow home (default), or a fresh PostgreSQL database "
        "created for this run on --postgres-url's server and dropped after it",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_SERVER_URL,
        help="SQLAlchemy URL of the PostgreSQL server for --ledger postgresql (any database on it; default "
        "$ORDERSYNC_TEST_POSTGRES or postgresql+psycopg2://postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument(
        "--keep-ledger", action="store_true", help="keep the PostgreSQL ledger database after the run"
    )
    parser.add_argument(
        "--bulk-threshold",
        type=int,
        help=f"sets {BULK_THRESHOLD_ENV} for the runs: above this many changed orders fetch_orders reads "
        "them with a bulk operation (default: the plugin's, 2,000)",
    )
    parser.add_argument(
        "--bulk-line-seconds",
        type=float,
        default=0.0,
        help="seconds per JSONL line the bound allows for downloading a bulk operation's file (default 0: "
        "the bound counts no CPU)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        help="seconds one DAG run may take before the benchmark stops it and fails "
        "(default 900 + 0.3 s per order)",
    )
    parser.add_argument(
        "--home", help="working directory (default .bench/n<N>-v<V>, -postgresql appended for that ledger)"
    )
    parser.add_argument(
        "--json",
        default=str(ROOT / "docs" / "benchmarks.json"),
        help="results file; this (size, ledger)'s entry is added or replaced",
    )
    parser.add_argument("--table", metavar="JSON", help="print a results file as Markdown tables and exit")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="print Markdown before/after tables (per DAG run and per phase) for the sizes both files hold",
    )
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
    if args.compare:
        print(compare(Path(args.compare[0]), Path(args.compare[1])))
        return 0
    if args.ledger == "postgres":
        args.ledger = "postgresql"
    if args.run_timeout is None:
        args.run_timeout = 900 + 0.3 * args.orders
    results = benchmark(args)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[entry_key(args.orders, args.vendors, args.ledger)] = results
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"• results written to {path}")
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
