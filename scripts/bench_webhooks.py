"""Benchmark: event-driven latency on the real Airflow stack (webhooks, docs/event-driven.md).

    python scripts/benchmark.py --webhooks --executor both               # or: make bench-webhooks
    python scripts/benchmark.py --webhooks --table docs/benchmarks-webhooks.json

For each executor (``local``: LocalExecutor + SQLite; ``celery``: CeleryExecutor with PostgreSQL and Redis on
127.0.0.1) it starts a whole stack (``scripts/stack.py``: api-server, scheduler, dag-processor, Celery worker)
with the sandbox stores in this process and their webhook subscriptions registered by ``ordersync_webhooks``,
and measures three scenarios on it, one after the other:

* **idle**: ``--idle`` (5) orders one at a time, each paid on a quiet stack (no run going, no delivery pending),
  and once it is pushed and the stack is quiet again, both its vendor orders shipped: the latency with no
  queueing at all.
* **stream**: ``--stream-rate`` (1) new merchant orders a second for ``--stream-seconds`` (120), each created
  PENDING and marked paid at once (``update_order(id, displayFinancialStatus="PAID")``), each with a line of
  Acme Tools (Shopify vendor) and one of Bolt Supply (WooCommerce vendor). Each vendor order is shipped
  ``--ship-after`` (3) seconds after it exists (Acme: ``fulfill_order``, Bolt: ``add_tracking``), so the tracking
  latency is measured under the same stream.
* **burst**: ``--burst`` (500) orders, created PENDING beforehand (their ``orders/create`` deliveries are dropped by
  a sandbox fault, so nothing runs for them before the burst), then all marked paid within ``--burst-within``
  (10) seconds. No shipments.

Latencies (all clocks are this machine's; Airflow's timestamps come from its REST API):

* **webhook → vendor order**, per (order, vendor): from the merchant's ``orders/paid`` delivery being accepted
  (its ``finished_at`` in the sandbox's delivery log: the receiver's 200 arrived) to the vendor order existing:
  the moment the vendor store's handler for ``orderCreate`` / ``POST /orders`` returned (this module wraps each
  sandbox store's ``handle``; the request log's ``time`` is when the request arrived, the stores' own
  ``createdAt`` / ``date_created`` have whole seconds);
* **shipment → merchant fulfilment**, per shipment: from ``fulfill_order`` / ``add_tracking`` returning to the
  merchant store's ``fulfillmentCreate`` handler returning.

Where the time goes: each latency is cut into contiguous segments (clipped to the latency's own interval, so
they add up to it exactly): *delivery* (shipments only: the vendor's webhook queued, sent and accepted),
*previous run* (a run of the same DAG was going when the event was accepted: ``max_active_runs=1``), *scheduler
pickup* (to the DAG run's ``queued_at``), *run start* (``queued_at`` → ``start_date``), then for each task on the
path (order_sync: validate_settings → fetch_orders → decide → push_vendor_orders[vendor]; tracking_sync:
validate_settings → sync_vendor_tracking[vendor] → write_merchant_fulfillments) *between tasks* (the upstream's end → this task's
``scheduled_when`` → ``queued_when``), *task start-up* (``queued_when`` → ``start_date``) and the task's own time
(``start_date`` → ``end_date``; for the last task, to the moment its write landed). The receiver's own time
(delivery ``sent_at`` → ``finished_at``) and the sandbox's delivery queue (payment → ``sent_at``; a sandbox store
sends one delivery at a time) come before "accepted" and are reported beside it.

Scheduled ticks are kept out: the stack ticks once a year (``ORDERSYNC_TICK_CRON="0 0 1 1 *"``); the scheduler
creates one run for the most recent tick at start-up, and the benchmark waits for it to end (and for the stack
to be quiet) before measuring; the report checks that no scheduled run was queued during a scenario.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import stack as stack_module  # noqa: E402  (scripts/ is not a package; it puts plugins/ and sandbox/ on the path)

TICK_CRON = "0 0 1 1 *"  # once a year: no scheduled tick during a measurement
SKUS = ("ACME-HAMMER", "BOLT-M6-100")  # one line of Acme Tools (Shopify), one of Bolt Supply (WooCommerce)
CREATES = {"orderCreate", "POST /orders"}
SCENARIOS = ("idle", "stream", "burst")
EVENT_DAGS = ("order_sync", "tracking_sync")
CHAINS = {
    "order_sync": ("validate_settings", "fetch_orders", "decide", "push_vendor_orders"),
    "tracking_sync": ("validate_settings", "sync_vendor_tracking", "write_merchant_fulfillments"),
}
SEGMENTS = ("delivery", "previous_run", "scheduler_pickup", "run_start", "between_tasks", "task_startup")
ACTUAL_COST = re.compile(rb'"actualQueryCost":\s*([0-9.]+)')
# "run": the random tail of the run id that wrote it (``asset_triggered__…_<tail>``; in runs.<dag>.list)
PAIR_COLUMNS = ("order", "vendor", "latency_s", "payment_to_vendor_order_s", "run")
SHIPMENT_COLUMNS = ("order", "vendor", "latency_s", "vendor_webhook_to_fulfilment_s", "run")


# ======================================================================================================
# small helpers
# ======================================================================================================
def epoch(value: str | None) -> float | None:
    """An ISO timestamp from the REST API (``2026-12-03T07:03:44.483386Z``) as epoch seconds."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="milliseconds")


def stats(values: list[float]) -> dict[str, Any]:
    """n, p50, p95 (nearest rank), max, mean, in seconds rounded to ms; None figures when empty."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}

    def rank(p: float) -> float:
        return xs[max(0, math.ceil(p * len(xs)) - 1)]

    return {
        "n": len(xs),
        "p50": round(rank(0.50), 3),
        "p95": round(rank(0.95), 3),
        "max": round(xs[-1], 3),
        "mean": round(sum(xs) / len(xs), 3),
    }


def run_tag(run_id: str) -> str:
    """The random tail Airflow gives an asset-triggered run id: unique, and short enough for a table row."""
    return run_id.rsplit("_", 1)[-1]


def numeric_id(value: Any) -> str:
    """``gid://shopify/Order/123`` / ``123`` / 123 -> ``"123"``."""
    return str(value).rsplit("/", 1)[-1]


def log(message: str) -> None:
    print(message, flush=True)


# ======================================================================================================
# timestamps inside the sandbox stores
# ======================================================================================================
class StoreClock:
    """Wraps each sandbox store's ``handle`` (the stores run in this process) to timestamp the writes that
    matter: a vendor order created (``orderCreate`` at a Shopify vendor, ``POST /orders`` at WooCommerce) and a
    merchant fulfilment created (``fulfillmentCreate``), when the handler returns, i.e. from when the store
    holds it. Also counts ``THROTTLED`` answers and samples the Shopify stores' cost buckets."""

    def __init__(self, stores: dict[str, Any]) -> None:
        self.stores = stores
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.requests: list[tuple[float, str, float]] = []  # (answered at, store, actual query cost or 0)
        self.throttled: Counter = Counter()
        self.listeners: list[Any] = []
        self.buckets: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        for name, store in stores.items():
            self._wrap(name, store)
        self._sampler = threading.Thread(target=self._sample, name="bench-buckets", daemon=True)
        self._sampler.start()

    def _wrap(self, name: str, store: Any) -> None:
        inner = store.handle

        def handle(request: Any) -> Any:
            started = time.time()
            response = inner(request)
            ended = time.time()
            cost = 0.0
            if store.platform == "shopify":
                found = ACTUAL_COST.search(response.body)
                cost = float(found.group(1)) if found else 0.0
            with self.lock:
                self.requests.append((ended, name, cost))
                if store.platform == "shopify" and b"THROTTLED" in response.body:
                    self.throttled[name] += 1
            if 200 <= response.status < 300:
                try:
                    op = store.operation_of(request) if store.is_write(request) else None
                except Exception:
                    op = None
                if op in CREATES or op == "fulfillmentCreate":
                    ident = self._created_id(op, response)
                    if ident is not None:
                        record = {"store": name, "op": op, "id": ident, "started": started, "ended": ended}
                        with self.lock:
                            self.records.append(record)
                            listeners = list(self.listeners)
                        for listener in listeners:
                            listener(record)
            return response

        store.handle = handle  # the server calls store.handle(request): the instance attribute wins

    @staticmethod
    def _created_id(op: str, response: Any) -> str | None:
        try:
            payload = response.payload()
        except Exception:
            return None
        if op == "POST /orders":
            return str(payload.get("id")) if isinstance(payload, dict) and payload.get("id") else None
        field, kind = (
            ("orderCreate", "order") if op == "orderCreate" else ("fulfillmentCreate", "fulfillment")
        )
        made = (((payload or {}).get("data") or {}).get(field) or {}).get(kind) or {}
        return made.get("id")

    def _sample(self) -> None:
        shopify = {n: s for n, s in self.stores.items() if s.platform == "shopify"}
        while not self._stop.wait(0.5):
            levels = {}
            for name, store in shopify.items():
                try:
                    levels[name] = round(store.available, 1)
                except Exception:
                    pass
            with self.lock:
                self.buckets.append((time.time(), levels))

    def stop(self) -> None:
        self._stop.set()

    def created(self, store: str, op: str | set[str]) -> dict[str, dict[str, Any]]:
        """``{numeric id: record}`` of the first create of each object."""
        ops = {op} if isinstance(op, str) else op
        out: dict[str, dict[str, Any]] = {}
        with self.lock:
            for r in self.records:
                if r["store"] == store and r["op"] in ops:
                    out.setdefault(numeric_id(r["id"]), r)
        return out

    def count(self, store: str, ops: set[str], since: float, until: float) -> int:
        with self.lock:
            return sum(
                1
                for r in self.records
                if r["store"] == store and r["op"] in ops and since <= r["ended"] <= until
            )

    def store_figures(self, since: float, until: float) -> dict[str, Any]:
        """Per store: requests answered in the window; Shopify stores also the points charged (actual query
        cost), the least time the bucket allows for them (``max(0, points - bucket) / restore rate``: the bucket
        full at the start) and the lowest level the bucket was seen at (sampled every 0.5 s)."""
        with self.lock:
            requests = [(n, c) for t, n, c in self.requests if since <= t <= until]
            samples = [lv for t, lv in self.buckets if since <= t <= until]
        out: dict[str, Any] = {}
        for name, store in self.stores.items():
            mine = [c for n, c in requests if n == name]
            figures: dict[str, Any] = {"requests": len(mine)}
            if store.platform == "shopify":
                points = sum(mine)
                levels = [lv[name] for lv in samples if name in lv]
                figures.update(
                    points_charged=round(points, 1),
                    bucket_size=store.bucket_size,
                    restore_per_second=store.restore_rate,
                    cost_bound_seconds=round(max(0.0, points - store.bucket_size) / store.restore_rate, 1),
                    lowest_bucket_points=min(levels) if levels else None,
                )
            out[name] = figures
        return out


# ======================================================================================================
# the stores, as the tests drive them
# ======================================================================================================
class Shop:
    """New merchant orders (lines copied from the demo order #1001) and the vendors' shipments."""

    def __init__(self, stack: Any) -> None:
        from ordersync_sandbox.seed import ACME, BOLT

        self.stack = stack
        self.merchant = stack.stores["merchant"]
        self.vendor_of_store = {ACME["name"]: ACME["vendor"], BOLT["name"]: BOLT["vendor"]}
        self.store_of_vendor = {v: k for k, v in self.vendor_of_store.items()}
        first = self.merchant.get_order("#1001")
        by_sku = {li["sku"]: li for li in first["lineItems"]}
        self.lines = []
        for sku in SKUS:
            li = by_sku[sku]
            line = {k: li[k] for k in ("title", "sku", "vendor", "originalUnitPriceSet") if li.get(k)}
            variant = li.get("variantId") or (li.get("variant") or {}).get("id")
            if variant:
                line["variantId"] = variant
            self.lines.append({**line, "quantity": 1})
        self.buyer = {
            k: first.get(k)
            for k in ("email", "customer", "shippingAddress", "billingAddress")
            if first.get(k)
        }

    def new_order(self, name: str) -> dict[str, Any]:
        return self.merchant.add_order(
            name=name,
            displayFinancialStatus="PENDING",
            currencyCode="USD",
            lineItems=[dict(li) for li in self.lines],
            **self.buyer,
        )

    def pay(self, order: dict[str, Any]) -> float:
        self.merchant.update_order(order["id"], displayFinancialStatus="PAID")
        return time.time()

    def ship(self, store_name: str, vendor_order_id: str, tag: str) -> dict[str, Any]:
        store = self.stack.stores[store_name]
        before = time.time()
        if store.platform == "shopify":
            number = f"1ZWH{tag}"
            store.fulfill_order(vendor_order_id, company="UPS", number=number)
        else:
            number = f"9400WH{tag}"
            store.add_tracking(vendor_order_id, "USPS", number)
        return {
            "store": store_name,
            "vendor_order_id": numeric_id(vendor_order_id),
            "number": number,
            "before": before,
            "at": time.time(),
        }

    def merchant_name_of(self, store_name: str, vendor_order_id: str) -> str | None:
        """The merchant order a vendor order was pushed for (Acme: its ``merchant-order-N`` tag; Bolt: its
        ``_ordersync_merchant_order`` meta), read from the vendor store."""
        store = self.stack.stores[store_name]
        if store.platform == "shopify":
            order = store.get_order(vendor_order_id) or {}
            for tag in order.get("tags") or []:
                if tag.startswith("merchant-order-"):
                    return "#" + tag.removeprefix("merchant-order-")
            return None
        order = store.get_order(vendor_order_id) or {}
        for meta in order.get("meta_data") or []:
            if meta.get("key") == "_ordersync_merchant_order":
                return meta.get("value")
        return None

    def vendor_markers(self) -> dict[str, Counter]:
        """Per vendor store: how many vendor orders carry each ordersync marker."""
        out: dict[str, Counter] = {}
        for name in self.vendor_of_store:
            store = self.stack.stores[name]
            if store.platform == "shopify":
                with store.lock:
                    out[name] = Counter(o.get("sourceIdentifier") for o in store.orders)
            else:
                out[name] = Counter(
                    next(
                        (
                            m.get("value")
                            for m in o.get("meta_data") or []
                            if m.get("key") == "_ordersync_marker"
                        ),
                        None,
                    )
                    for o in store.orders
                )
        return out


class Shipper(threading.Thread):
    """Ships each vendor order of the scenario's merchant orders ``after`` seconds after it exists."""

    def __init__(self, shop: Shop, clock: StoreClock, after: float, names: set[str]) -> None:
        super().__init__(name="bench-shipper", daemon=True)
        self.shop, self.clock, self.after, self.names = shop, clock, after, names
        self.cond = threading.Condition()
        self.pending: list[tuple[float, str, str]] = []
        self.shipped: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.ignored = 0
        self.done = threading.Event()
        clock.listeners.append(self._created)

    def _created(self, record: dict[str, Any]) -> None:
        if record["op"] in CREATES:
            with self.cond:
                self.pending.append((record["ended"] + self.after, record["store"], record["id"]))
                self.cond.notify()

    def run(self) -> None:
        while not self.done.is_set():
            with self.cond:
                self.pending.sort()
                due = [p for p in self.pending if p[0] <= time.time()]
                self.pending = self.pending[len(due) :]
                if not due:
                    wait = (self.pending[0][0] - time.time()) if self.pending else 0.5
                    self.cond.wait(max(0.01, min(wait, 0.5)))
                    continue
            for _, store_name, vendor_order_id in due:
                name = self.shop.merchant_name_of(store_name, vendor_order_id)
                if name not in self.names:
                    self.ignored += 1
                    continue
                try:
                    shipment = self.shop.ship(
                        store_name, vendor_order_id, name.lstrip("#") + store_name[0].upper()
                    )
                except Exception as exc:  # reported, never fatal to the stream
                    self.errors.append(f"{store_name} {vendor_order_id}: {type(exc).__name__}: {exc}")
                    continue
                shipment["order"] = name
                self.shipped.append(shipment)

    def stop(self) -> None:
        self.done.set()
        with self.cond:
            self.cond.notify()
        self.clock.listeners.remove(self._created)
        self.join(5)


# ======================================================================================================
# reading what happened: REST API, ledger, delivery logs
# ======================================================================================================
class Observed:
    """Everything the analysis reads, fetched once after a scenario."""

    def __init__(self, stack: Any, since: float) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {
            d: _all(stack, f"/api/v2/dags/{d}/dagRuns", "dag_runs") for d in EVENT_DAGS
        }
        self.tis: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for d in EVENT_DAGS:
            for ti in _all(stack, f"/api/v2/dags/{d}/dagRuns/~/taskInstances", "task_instances"):
                self.tis[(d, ti["dag_run_id"])].append(ti)
        self.events = _all(stack, "/api/v2/assets/events", "asset_events", {"order_by": "timestamp"})
        self.events_of_run: Counter = Counter()
        for ev in self.events:
            for made in ev.get("created_dagruns") or []:
                self.events_of_run[(made["dag_id"], made["run_id"])] += 1
        self.deliveries = {
            name: delivery_index(
                [d for d in store.webhook_deliveries() if (d.get("queued_at") or 0) >= since - 1]
            )
            for name, store in stack.stores.items()
        }
        self.run_by_id = {(d, r["dag_run_id"]): r for d in EVENT_DAGS for r in self.runs[d]}

    def run(self, qualified: str) -> dict[str, Any] | None:
        """The ledger's ``dag_id/run_id``."""
        dag_id, _, run_id = (qualified or "").partition("/")
        return self.run_by_id.get((dag_id, run_id))

    def task(self, dag_id: str, run_id: str, task_id: str, label: str | None = None) -> dict[str, Any] | None:
        found = [t for t in self.tis[(dag_id, run_id)] if t["task_id"] == task_id]
        if label is not None and len(found) > 1:
            found = [t for t in found if t.get("rendered_map_index") == label] or found
        return found[0] if found else None

    def previous_end(self, dag_id: str, run: dict[str, Any], accepted: float) -> float | None:
        """The end of another run of the DAG that was still going after ``accepted`` and before ``run`` was
        queued (max_active_runs=1: the asset event waited for it)."""
        queued = epoch(run["queued_at"]) or 0
        ends = [
            epoch(r["end_date"]) or queued
            for r in self.runs[dag_id]
            if r["dag_run_id"] != run["dag_run_id"]
            and (epoch(r["start_date"]) or queued) < queued
            and (epoch(r["end_date"]) or queued) > accepted
        ]
        return min(max(ends), queued) if ends else None


def _all(stack: Any, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = stack.api("GET", path, params={**(params or {}), "limit": 100, "offset": len(out)}).json()
        items = page.get(key) or []
        out.extend(items)
        if not items or len(out) >= page.get("total_entries", 0):
            return out


def _body(delivery: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(delivery.get("body") or "{}")
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}


def delivery_index(deliveries: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The accepted (2xx) deliveries by (topic, numeric id of the order they are about), each body parsed once."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in deliveries:
        if not d.get("ok") or d.get("finished_at") is None:
            continue
        body = _body(d)
        if d["topic"].startswith("fulfillments/"):  # a fulfilment's payload names its order in order_id
            ref = body.get("order_id")
        else:  # an order's payload: Shopify's admin_graphql_api_id / id, WooCommerce's id
            ref = body.get("admin_graphql_api_id") or body.get("id")
        if ref is not None:
            out[(d["topic"], numeric_id(ref))].append(d)
    return out


def first_accepted(
    index: dict[tuple[str, str], list[dict[str, Any]]], topics: set[str], order_id: str, after: float = 0
) -> dict[str, Any] | None:
    """The first accepted delivery on one of ``topics`` about order ``order_id`` queued at or after ``after``."""
    found = [
        d
        for topic in topics
        for d in index.get((topic, numeric_id(order_id)), [])
        if (d.get("queued_at") or 0) >= after
    ]
    return min(found, key=lambda d: d["finished_at"]) if found else None


def segments_to(
    observed: Observed,
    dag_id: str,
    run: dict[str, Any],
    accepted: float,
    end: float,
    label: str,
    start: float,
    pre: list[tuple[str, float, float]] | None = None,
) -> dict[str, float]:
    """The latency ``start`` → ``end`` cut into contiguous segments (each clipped to the interval, so they add up
    to ``end - start``): ``pre`` (before acceptance), previous run, scheduler pickup, run start, and per task on
    the DAG's path between tasks / start-up / its own time (the last task to ``end``)."""
    queued, begun = epoch(run["queued_at"]) or accepted, epoch(run["start_date"]) or accepted
    previous = observed.previous_end(dag_id, run, accepted)
    cuts: list[tuple[str, float, float]] = list(pre or [])
    if previous is not None:
        cuts.append(("previous_run", accepted, previous))
    cuts.append(("scheduler_pickup", previous if previous is not None else accepted, queued))
    cuts.append(("run_start", queued, begun))
    upstream_end = begun
    chain = CHAINS[dag_id]
    for i, task_id in enumerate(chain):
        last = i == len(chain) - 1
        ti = observed.task(dag_id, run["dag_run_id"], task_id, label)  # a mapped task: this vendor's instance
        if ti is None:
            break
        sched = epoch(ti.get("scheduled_when")) or epoch(ti.get("queued_when")) or upstream_end
        queue = epoch(ti.get("queued_when")) or sched
        began = epoch(ti.get("start_date")) or queue
        finished = end if last else (epoch(ti.get("end_date")) or began)
        cuts += [
            ("between_tasks", upstream_end, sched),
            ("between_tasks", sched, queue),
            ("task_startup", queue, began),
            (task_id, began, finished),
        ]
        upstream_end = finished
    # The cut points in order, each no earlier than the one before: a run that was already going when the
    # event was accepted (it read the store for an earlier event) has its time before acceptance counted as
    # the delivery's, and the rest to the task that was going.
    out: dict[str, float] = defaultdict(float)
    cursor = start
    for name, _a, b in cuts:
        point = min(max(b, cursor), end)
        out[name] += point - cursor
        cursor = point
    out["unaccounted"] = (end - start) - sum(out.values())
    return dict(out)


# ======================================================================================================
# the benchmark on one stack
# ======================================================================================================
class Bench:
    def __init__(self, stack: Any, clock: StoreClock) -> None:
        from sqlalchemy import create_engine

        self.stack = stack
        self.clock = clock
        self.shop = Shop(stack)
        self.engine = create_engine(stack.ledger_url)
        self._names = iter(range(20001, 99999))

    def name(self) -> str:
        return f"#{next(self._names)}"

    # ------------------------------------------------------------------ CPU
    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each Airflow process of the stack (api-server, scheduler, dag-processor,
        celery-worker) has used so far, its own only: the LocalExecutor's workers, the Celery pool and the task
        processes are its children and not counted."""
        ticks = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, proc in self.stack.processes.items():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / ticks
        return out

    def cpu_used(self, before: dict[str, float], start: float, end: float) -> dict[str, Any]:
        after = self.cpu()
        seconds = max(end - start, 1e-9)
        used = {k: round(after[k] - before.get(k, 0.0), 1) for k in after}
        return {"seconds": used, "share_of_one_core": {k: round(v / seconds, 3) for k, v in used.items()}}

    # ------------------------------------------------------------------ waiting
    def busy(self) -> list[str]:
        reasons = []
        for name, store in self.stack.stores.items():
            if not store.webhooks.idle():
                reasons.append(f"{name} deliveries")
        for dag_id in EVENT_DAGS:
            going = self.stack.api(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"], "limit": 1}
            ).json()["total_entries"]
            if going:
                reasons.append(f"{dag_id} runs")
            queued = self.stack.api("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents", check=False)
            if queued.status_code == 200 and queued.json().get("total_entries"):
                reasons.append(f"{dag_id} queued asset events")
        return reasons

    def quiet(self, timeout: float = 600, settle: float = 4.0) -> float:
        """Wait until no delivery is pending, no run goes and no asset event waits, for ``settle`` s in a row."""
        deadline = time.monotonic() + timeout
        calm_since: float | None = None
        while True:
            self.stack.check_alive("while waiting for the stack to go quiet")
            reasons = self.busy()
            now = time.monotonic()
            if not reasons:
                calm_since = calm_since or now
                if now - calm_since >= settle:
                    return time.time()
            else:
                calm_since = None
            if now > deadline:
                raise stack_module.StackError(f"the stack never went quiet: {reasons}")
            time.sleep(1)

    def wait_start_up_runs(self, timeout: float = 300) -> list[dict[str, Any]]:
        """The scheduler creates one run per DAG for the most recent (yearly) tick at start-up: wait for both to
        end, then for quiet."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for d in EVENT_DAGS for r in _all(self.stack, f"/api/v2/dags/{d}/dagRuns", "dag_runs")]
            ticks = [r for r in runs if r["run_type"] == "scheduled"]
            if {r["dag_id"] for r in ticks} == set(EVENT_DAGS) and all(
                r["state"] in stack_module.TERMINAL for r in ticks
            ):
                self.quiet()
                return [
                    {k: r[k] for k in ("dag_id", "dag_run_id", "state", "start_date", "end_date")}
                    for r in ticks
                ]
            if time.monotonic() > deadline:
                raise stack_module.StackError(f"the start-up tick runs did not end: {ticks}")
            time.sleep(1)

    def ledger_pairs(self, order_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
        from sqlalchemy import select

        from ordersync.ledger.schema import vendor_orders

        out = {}
        with self.engine.connect() as conn:
            for start in range(0, len(order_ids), 200):
                chunk = order_ids[start : start + 200]
                for r in conn.execute(
                    select(vendor_orders).where(vendor_orders.c.merchant_order_id.in_(chunk))
                ):
                    out[(r.merchant_order_id, r.vendor)] = dict(r._mapping)
        return out

    def ledger_shipments(self, order_ids: list[str]) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from ordersync.ledger.schema import shipments

        out = []
        with self.engine.connect() as conn:
            for start in range(0, len(order_ids), 200):
                chunk = order_ids[start : start + 200]
                out += [
                    dict(r._mapping)
                    for r in conn.execute(select(shipments).where(shipments.c.merchant_order_id.in_(chunk)))
                ]
        return out

    def inbox(self, since: float) -> dict[str, Any]:
        from sqlalchemy import select

        from ordersync.ledger.schema import webhook_inbox

        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(webhook_inbox))]
        rows = [r for r in rows if r["received_at"] and _aware(r["received_at"]).timestamp() >= since - 1]
        return {
            "events": len(rows),
            "by_dag": dict(Counter(r["dag_id"] for r in rows)),
            "outcomes": dict(Counter(r["outcome"] or "waiting" for r in rows)),
            "not_done": sum(1 for r in rows if r["done_at"] is None),
        }

    def wait_until(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.stack.check_alive(f"waiting for {what}")
            if time.monotonic() > deadline:
                raise stack_module.StackError(f"{what}: not within {timeout:.0f} s")
            time.sleep(1)

    def all_pushed(self, orders: list[dict[str, Any]]) -> bool:
        pairs = self.ledger_pairs([o["id"] for o in orders])
        vendors = set(self.shop.store_of_vendor)
        return all(pairs.get((o["id"], v), {}).get("state") == "pushed" for o in orders for v in vendors)

    # ------------------------------------------------------------------ scenarios
    def stream(self, rate: float, seconds: float, ship_after: float, timeout: float) -> dict[str, Any]:
        count = max(1, round(rate * seconds))
        log(
            f"• stream: {count} orders at {rate:g}/s, each vendor order shipped {ship_after:g} s after it exists"
        )
        load, cpu = [round(x, 2) for x in os.getloadavg()], self.cpu()
        names = [self.name() for _ in range(count)]
        shipper = Shipper(self.shop, self.clock, ship_after, set(names))
        shipper.start()
        start = time.time()
        orders, paid_at = [], {}
        try:
            for i, name in enumerate(names):
                due = start + i / rate
                time.sleep(max(0.0, due - time.time()))
                order = self.shop.new_order(name)
                paid_at[order["id"]] = self.shop.pay(order)
                orders.append(order)
            paid_span = time.time() - start
            log(
                f"  {count} orders created and paid in {paid_span:.1f} s; waiting for the vendor orders and shipments"
            )
            self.wait_until("every stream order pushed", lambda: self.all_pushed(orders), timeout)
            want = 2 * count
            self.wait_until(
                "every vendor order shipped",
                lambda: len(shipper.shipped) + len(shipper.errors) >= want,
                timeout,
            )
            self.wait_until(
                "every shipment at the merchant",
                lambda: (
                    sum(
                        1 for s in self.ledger_shipments([o["id"] for o in orders]) if s["state"] == "written"
                    )
                    >= want
                ),
                timeout,
            )
            end = self.quiet(timeout)
        finally:
            shipper.stop()
        result = self.analyse("stream", orders, paid_at, start, end, shipper.shipped)
        result["config"] = {
            "orders": count,
            "rate_per_second": rate,
            "seconds": seconds,
            "ship_after_seconds": ship_after,
        }
        result["paid_span_seconds"] = round(paid_span, 2)
        result["load_average_at_start"] = load
        result["cpu"] = self.cpu_used(cpu, start, end)
        result["shipper"] = {
            "shipped": len(shipper.shipped),
            "errors": shipper.errors[:20],
            "ignored": shipper.ignored,
        }
        result["checks"]["every_vendor_order_shipped"] = (
            len(shipper.shipped) == 2 * count and not shipper.errors
        )
        return result

    def idle(self, count: int, timeout: float) -> dict[str, Any]:
        """One order at a time on a quiet stack: paid, pushed, quiet, both vendor orders shipped, written."""
        log(f"• idle: {count} order(s), one at a time on a quiet stack, then their shipments")
        load, cpu = [round(x, 2) for x in os.getloadavg()], self.cpu()
        start = time.time()
        orders, paid_at, shipped = [], {}, []
        for _ in range(count):
            self.quiet(timeout)
            order = self.shop.new_order(self.name())
            paid_at[order["id"]] = self.shop.pay(order)
            orders.append(order)
            self.wait_until(f"{order['name']} pushed", lambda o=order: self.all_pushed([o]), timeout)
            self.quiet(timeout)
            for (_oid, vendor), pair in self.ledger_pairs([order["id"]]).items():
                store = self.shop.store_of_vendor[vendor]
                tag = order["name"].lstrip("#") + store[0].upper()
                shipped.append(
                    {**self.shop.ship(store, pair["vendor_order_id"], tag), "order": order["name"]}
                )
            self.wait_until(
                f"{order['name']}'s shipments at the merchant",
                lambda o=order: (
                    sum(1 for r in self.ledger_shipments([o["id"]]) if r["state"] == "written") >= 2
                ),
                timeout,
            )
        end = self.quiet(timeout)
        result = self.analyse("idle", orders, paid_at, start, end, shipped)
        result["config"] = {"orders": count}
        result["load_average_at_start"] = load
        result["cpu"] = self.cpu_used(cpu, start, end)
        return result

    def burst(self, count: int, within: float, timeout: float) -> dict[str, Any]:
        log(f"• burst: {count} orders paid within {within:g} s")
        merchant = self.shop.merchant
        merchant.add_webhook_fault("drop", times=-1)  # nothing runs for the PENDING orders before the burst
        try:
            orders = [self.shop.new_order(self.name()) for _ in range(count)]
        finally:
            merchant.clear_webhook_faults()
        self.quiet(timeout)
        load, cpu = [round(x, 2) for x in os.getloadavg()], self.cpu()
        start = time.time()
        paid_at = {}
        for i, order in enumerate(orders):
            time.sleep(max(0.0, start + i * within / count - time.time()))
            paid_at[order["id"]] = self.shop.pay(order)
        paid_span = time.time() - start
        log(f"  {count} orders paid in {paid_span:.1f} s; waiting for every vendor order")
        self.wait_until("every burst order pushed", lambda: self.all_pushed(orders), timeout)
        pushed_all = time.time()
        end = self.quiet(timeout)
        result = self.analyse("burst", orders, paid_at, start, end, [])
        result["config"] = {"orders": count, "within_seconds": within}
        result["paid_span_seconds"] = round(paid_span, 2)
        result["all_pushed_after_seconds"] = round(pushed_all - start, 2)
        result["load_average_at_start"] = load
        result["cpu"] = self.cpu_used(cpu, start, end)
        result["checks"]["paid_within_window"] = paid_span <= within + 1.0
        return result

    # ------------------------------------------------------------------ analysis
    def analyse(
        self,
        label: str,
        orders: list[dict[str, Any]],
        paid_at: dict[str, float],
        start: float,
        end: float,
        shipped: list[dict[str, Any]],
    ) -> dict[str, Any]:
        observed = Observed(self.stack, start)
        ids = [o["id"] for o in orders]
        by_id = {o["id"]: o for o in orders}
        ledger = self.ledger_pairs(ids)
        merchant_deliveries = observed.deliveries["merchant"]
        created = {s: self.clock.created(s, CREATES) for s in self.shop.store_of_vendor.values()}
        pairs, rows, receiver, queue_wait = [], [], [], []
        paid_delivery: dict[str, dict[str, Any] | None] = {}
        for oid in ids:
            paid_delivery[oid] = d = first_accepted(merchant_deliveries, {"orders/paid"}, oid, after=start)
            if d is not None:
                receiver.append(d["finished_at"] - d["sent_at"])
                queue_wait.append(d["sent_at"] - paid_at[oid])
        for (oid, vendor), pair in sorted(ledger.items(), key=lambda kv: (by_id[kv[0][0]]["name"], kv[0][1])):
            d = paid_delivery.get(oid)
            record = created[self.shop.store_of_vendor[vendor]].get(numeric_id(pair.get("vendor_order_id")))
            run = observed.run(pair.get("run_id") or "")
            if d is None or record is None or run is None:
                continue
            accepted, exists = d["finished_at"], record["ended"]
            parts = segments_to(observed, "order_sync", run, accepted, exists, vendor, accepted)
            pairs.append(
                {
                    "order": by_id[oid]["name"],
                    "vendor": vendor,
                    "latency": exists - accepted,
                    "payment": exists - paid_at[oid],
                    "run_id": run["dag_run_id"],
                    "parts": parts,
                }
            )
            rows.append(
                [
                    by_id[oid]["name"],
                    vendor,
                    round(exists - accepted, 3),
                    round(exists - paid_at[oid], 3),
                    run_tag(run["dag_run_id"]),
                ]
            )
        result: dict[str, Any] = {
            "window": {"start": iso(start), "end": iso(end), "seconds": round(end - start, 1)},
            "latency": {
                "webhook_to_vendor_order": stats([p["latency"] for p in pairs]),
                "webhook_to_vendor_order_by_vendor": {
                    v: stats([p["latency"] for p in pairs if p["vendor"] == v])
                    for v in sorted(self.shop.store_of_vendor)
                },
                "payment_to_vendor_order": stats([p["payment"] for p in pairs]),
            },
            "before_accepted": {
                "delivery_queue": stats(queue_wait),
                "receiver": stats(receiver),
            },
            "breakdown": {"webhook_to_vendor_order": breakdown([p["parts"] for p in pairs])},
            "pairs": {"columns": list(PAIR_COLUMNS), "rows": rows},
        }
        ship_rows, shipments_measured = [], []
        if shipped:
            shipments_measured, ship_rows = self.shipment_latencies(observed, shipped, by_id, orders)
            result["latency"]["shipment_to_merchant_fulfilment"] = stats(
                [s["latency"] for s in shipments_measured]
            )
            result["latency"]["vendor_webhook_to_merchant_fulfilment"] = stats(
                [s["from_webhook"] for s in shipments_measured]
            )
            result["latency"]["shipment_to_merchant_fulfilment_by_vendor"] = {
                v: stats([s["latency"] for s in shipments_measured if s["vendor"] == v])
                for v in sorted(self.shop.store_of_vendor)
            }
            result["breakdown"]["shipment_to_merchant_fulfilment"] = breakdown(
                [s["parts"] for s in shipments_measured]
            )
            result["shipments"] = {"columns": list(SHIPMENT_COLUMNS), "rows": ship_rows}
        result["runs"] = self.run_figures(observed, start, end, ledger)
        result["stores"] = {
            "vendor_creates": {
                s: self.clock.count(s, CREATES, start, end) for s in self.shop.vendor_of_store
            },
            "merchant_fulfilment_creates": self.clock.count("merchant", {"fulfillmentCreate"}, start, end),
            "throttled_answers": dict(self.clock.throttled),
            "api": self.clock.store_figures(start, end),
        }
        result["inbox"] = self.inbox(start)
        result["checks"] = self.checks(
            orders, ledger, pairs, shipped, shipments_measured, observed, start, end, result
        )
        return result

    def shipment_latencies(
        self,
        observed: Observed,
        shipped: list[dict[str, Any]],
        by_id: dict[str, Any],
        orders: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], list[list[Any]]]:
        ledger = {
            (numeric_id(s["vendor_order_id"]), s["vendor"]): s for s in self.ledger_shipments(list(by_id))
        }
        fulfilments = self.clock.created("merchant", "fulfillmentCreate")
        topics = {"shopify": {"fulfillments/create", "orders/updated"}, "woocommerce": {"order.updated"}}
        out, rows = [], []
        for s in shipped:
            vendor = self.shop.vendor_of_store[s["store"]]
            row = ledger.get((s["vendor_order_id"], vendor))
            if row is None or not row.get("merchant_fulfillment_id"):
                continue
            record = fulfilments.get(numeric_id(row["merchant_fulfillment_id"]))
            run = observed.run(row.get("run_id") or "")
            platform = self.stack.stores[s["store"]].platform
            d = first_accepted(
                observed.deliveries[s["store"]], topics[platform], s["vendor_order_id"], after=s["before"]
            )
            if record is None or run is None or d is None:
                continue
            shipped_at, accepted, exists = s["at"], d["finished_at"], record["ended"]
            pre = [("delivery", shipped_at, accepted)]
            parts = segments_to(observed, "tracking_sync", run, accepted, exists, vendor, shipped_at, pre)
            out.append(
                {
                    "order": s["order"],
                    "vendor": vendor,
                    "latency": exists - shipped_at,
                    "from_webhook": exists - accepted,
                    "parts": parts,
                }
            )
            rows.append(
                [
                    s["order"],
                    vendor,
                    round(exists - shipped_at, 3),
                    round(exists - accepted, 3),
                    run_tag(run["dag_run_id"]),
                ]
            )
        return out, rows

    def run_figures(
        self, observed: Observed, start: float, end: float, ledger: dict[Any, Any]
    ) -> dict[str, Any]:
        """Per DAG: the runs queued in the window, each with its tasks; aggregated per task."""
        pushed_by = Counter(p.get("run_id") for p in ledger.values() if p.get("state") == "pushed")
        out: dict[str, Any] = {}
        for dag_id in EVENT_DAGS:
            runs = [r for r in observed.runs[dag_id] if start <= (epoch(r["queued_at"]) or 0) <= end]
            listed, per_task = [], defaultdict(lambda: defaultdict(list))
            idle_pickup: list[float] = []  # the triggering asset event -> queued_at, no run of the DAG going
            idle_running: list[float] = []  # ... -> start_date
            for r in sorted(runs, key=lambda r: r["queued_at"]):
                queued, begun, ended = epoch(r["queued_at"]), epoch(r["start_date"]), epoch(r["end_date"])
                tasks = []
                upstream: dict[str, float] = {}
                for ti in sorted(
                    observed.tis[(dag_id, r["dag_run_id"])],
                    key=lambda t: (t.get("scheduled_when") or "", t["map_index"]),
                ):
                    sched, qd = epoch(ti.get("scheduled_when")), epoch(ti.get("queued_when"))
                    st, en = epoch(ti.get("start_date")), epoch(ti.get("end_date"))
                    prior = _upstream_end(dag_id, ti["task_id"], upstream, begun)
                    figures = {
                        "task": ti["task_id"]
                        + (
                            f"[{ti.get('rendered_map_index') or ti['map_index']}]"
                            if ti["map_index"] >= 0
                            else ""
                        ),
                        "state": ti["state"],
                        "between_tasks": _diff(prior, qd),
                        "scheduled_to_queued": _diff(sched, qd),
                        "startup": _diff(qd, st),
                        "duration": _diff(st, en),
                    }
                    tasks.append(figures)
                    if en is not None:
                        upstream[ti["task_id"]] = max(upstream.get(ti["task_id"], 0), en)
                    for key in ("between_tasks", "scheduled_to_queued", "startup", "duration"):
                        if figures[key] is not None:
                            per_task[ti["task_id"]][key].append(figures[key])
                consumed = observed.events_of_run[(dag_id, r["dag_run_id"])]
                trigger = self._triggering_event(observed, dag_id, r)
                if (
                    trigger is not None
                    and queued is not None
                    and begun is not None
                    and not self._busy_at(observed, dag_id, r, trigger)
                ):
                    idle_pickup.append(queued - trigger)
                    idle_running.append(begun - trigger)
                listed.append(
                    {
                        "run_id": r["dag_run_id"],
                        "run_type": r["run_type"],
                        "state": r["state"],
                        "queued_at": _diff(start, queued),
                        "start_delay": _diff(queued, begun),
                        "duration": _diff(begun, ended),
                        "asset_events": consumed,
                        "pairs_pushed": pushed_by.get(f"{dag_id}/{r['dag_run_id']}", 0)
                        if dag_id == "order_sync"
                        else None,
                        "tasks": tasks,
                    }
                )
            event_runs = [x for x in listed if x["run_type"] == "asset_triggered"]
            out[dag_id] = {
                "asset_triggered": len(event_runs),
                "scheduled": sum(1 for x in listed if x["run_type"] == "scheduled"),
                "other": sum(1 for x in listed if x["run_type"] not in ("asset_triggered", "scheduled")),
                "failed": sum(1 for x in listed if x["state"] != "success"),
                "duration": stats([x["duration"] for x in event_runs if x["duration"] is not None]),
                "start_delay": stats([x["start_delay"] for x in event_runs if x["start_delay"] is not None]),
                "triggering_event_to_queued_when_idle": stats(idle_pickup),
                "triggering_event_to_running_when_idle": stats(idle_running),
                "asset_events_per_run": stats([x["asset_events"] for x in event_runs]),
                "tasks": {
                    task: {key: stats(vals) for key, vals in figures.items()}
                    for task, figures in per_task.items()
                },
                "list": listed,
            }
            if dag_id == "order_sync":
                out[dag_id]["runs_that_pushed"] = sum(1 for x in event_runs if x["pairs_pushed"])
                out[dag_id]["pairs_per_pushing_run"] = stats(
                    [x["pairs_pushed"] for x in event_runs if x["pairs_pushed"]]
                )
        return out

    @staticmethod
    def _triggering_event(observed: Observed, dag_id: str, run: dict[str, Any]) -> float | None:
        """When the asset event that created the run was recorded. (The events a run consumes are not the ones it
        handles: an event whose queue entry Airflow cleared while it created a run is consumed by the next run,
        though the run going read it from the ledger's inbox.)"""
        times = [
            epoch(ev["timestamp"])
            for ev in observed.events
            if any(
                m["dag_id"] == dag_id and m["run_id"] == run["dag_run_id"] and m.get("triggering")
                for m in ev.get("created_dagruns") or []
            )
        ]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    @staticmethod
    def _busy_at(observed: Observed, dag_id: str, run: dict[str, Any], moment: float) -> bool:
        return observed.previous_end(dag_id, run, moment) is not None

    def checks(
        self,
        orders: list[dict[str, Any]],
        ledger: dict[Any, Any],
        pairs: list[dict[str, Any]],
        shipped: list[dict[str, Any]],
        shipments_measured: list[dict[str, Any]],
        observed: Observed,
        start: float,
        end: float,
        result: dict[str, Any],
    ) -> dict[str, bool]:
        vendors = sorted(self.shop.store_of_vendor)
        want_pairs = len(orders) * len(vendors)
        markers = self.shop.vendor_markers()
        exactly_once = True
        for o in orders:
            marker = f"ordersync-{o['legacyResourceId']}"
            for v in vendors:
                if markers[self.shop.store_of_vendor[v]].get(marker, 0) != 1:
                    exactly_once = False
        creates = sum(result["stores"]["vendor_creates"].values())
        out = {
            "every_pair_pushed": sum(1 for p in ledger.values() if p["state"] == "pushed") == want_pairs,
            "one_vendor_order_per_pair": exactly_once,
            "one_create_request_per_pair": creates == want_pairs,
            "every_pair_measured": len(pairs) == want_pairs,
            "no_scheduled_run_in_window": all(result["runs"][d]["scheduled"] == 0 for d in EVENT_DAGS),
            "every_run_succeeded": all(result["runs"][d]["failed"] == 0 for d in EVENT_DAGS),
            "inbox_drained": result["inbox"]["not_done"] == 0,
            "segments_add_up": all(abs(p["parts"]["unaccounted"]) < 0.01 for p in pairs)
            and all(abs(s["parts"]["unaccounted"]) < 0.01 for s in shipments_measured),
        }
        result["segments_not_adding_up"] = [
            {
                "order": x["order"],
                "vendor": x["vendor"],
                "parts": {k: round(v, 3) for k, v in x["parts"].items()},
            }
            for x in pairs + shipments_measured
            if abs(x["parts"]["unaccounted"]) >= 0.01
        ][:20]
        if shipped:
            rows = self.ledger_shipments([o["id"] for o in orders])
            numbers: Counter = Counter()
            for o in orders:
                current = self.shop.merchant.get_order(o["id"]) or {}
                for f in current.get("fulfillments") or []:
                    for t in f.get("trackingInfo") or []:
                        numbers[t.get("number")] += 1
            out["every_shipment_written_once"] = (
                all(numbers.get(s["number"]) == 1 for s in shipped)
                and sum(numbers.values()) == len(shipped)
                and sum(1 for r in rows if r["state"] == "written") == len(shipped)
                and result["stores"]["merchant_fulfilment_creates"] == len(shipped)
            )
            out["every_shipment_measured"] = len(shipments_measured) == len(shipped)
        return out


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _diff(a: float | None, b: float | None) -> float | None:
    return round(b - a, 3) if a is not None and b is not None else None


def _upstream_end(dag_id: str, task_id: str, ends: dict[str, float], run_start: float | None) -> float | None:
    chain = CHAINS[dag_id]
    if task_id in chain:
        i = chain.index(task_id)
        return ends.get(chain[i - 1], run_start) if i else run_start
    return max(ends.values()) if ends else run_start  # summary: after the last of the others


def breakdown(parts: list[dict[str, float]]) -> dict[str, Any]:
    """p50 / p95 / max / mean of each segment over the measured latencies, and each segment's share of the
    summed latency."""
    if not parts:
        return {}
    keys = [k for k in SEGMENTS if any(k in p for p in parts)]
    keys += sorted({k for p in parts for k in p} - set(keys) - {"unaccounted"})
    total = sum(sum(v for k, v in p.items() if k != "unaccounted") for p in parts) or 1.0
    return {
        k: {
            **stats([p.get(k, 0.0) for p in parts]),
            "share": round(sum(p.get(k, 0.0) for p in parts) / total, 3),
        }
        for k in keys
    }


# ======================================================================================================
# one executor, then the command line
# ======================================================================================================
def run_executor(executor: str, args: argparse.Namespace) -> dict[str, Any]:
    from benchmark import machine

    home = Path(args.home or ROOT / ".bench").resolve() / f"webhooks-{executor}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if executor == "celery":
        if not stack_module.redis_reachable():
            raise SystemExit(f"Redis is not reachable at {stack_module.REDIS_URL}: the Celery stack needs it")
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    stack = stack_module.Stack(
        executor=executor, home=home, schedule=True, webhooks=True, tick_cron=TICK_CRON, extra_env=extra_env
    )
    log(f"• {executor}: starting the stack (logs in {stack.logs_dir})")
    started = time.monotonic()
    clock = None
    try:
        stack.start()
        clock = StoreClock(stack.stores)
        bench = Bench(stack, clock)
        log(
            f"  up in {time.monotonic() - started:.0f} s at {stack.url}; waiting for the start-up tick runs to end"
        )
        ticks = bench.wait_start_up_runs()
        result: dict[str, Any] = {
            "executor": executor,
            "commit": _commit(),
            "machine": machine(),
            "tick_cron": TICK_CRON,
            "extra_env": extra_env,
            "start_up_tick_runs": ticks,
            "worker_concurrency": stack.worker_concurrency if executor == "celery" else None,
        }
        if args.idle > 0:
            result["idle"] = bench.idle(args.idle, args.timeout)
            print_scenario(executor, "idle", result["idle"])
        if args.stream_seconds > 0:
            result["stream"] = bench.stream(
                args.stream_rate, args.stream_seconds, args.ship_after, args.timeout
            )
            print_scenario(executor, "stream", result["stream"])
        if args.burst > 0:
            result["burst"] = bench.burst(args.burst, args.burst_within, args.timeout)
            print_scenario(executor, "burst", result["burst"])
        return result
    except stack_module.StackError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(f"{executor}: the stack failed; logs in {stack.logs_dir}") from None
    finally:
        if clock is not None:
            clock.stop()
        stack.stop()


def dump(value: Any, indent: int = 0) -> str:
    """JSON with sorted keys, one key per line, but a list of plain values (a pair's row, a load average) and a
    small flat object (one figure's statistics, one task's times) on one line: the file stays readable and a
    fraction of ``indent=1``'s size."""
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        if len(value) <= 8 and not any(isinstance(v, (dict, list)) for v in value.values()):
            return json.dumps(value, sort_keys=True)  # a figure's n / p50 / p95 / max / mean, a task's times
        items = [f"{pad}{json.dumps(str(k))}: {dump(v, indent + 1)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(pad + dump(v, indent + 1) for v in value) + "\n" + " " * indent + "]"
    return json.dumps(value)


def _commit() -> str | None:
    """The checkout's commit, with ``+changes`` when plugins/, dags/ or sandbox/ differ from it."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "plugins", "dags", "sandbox"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def _fmt(s: dict[str, Any]) -> str:
    if not s or not s.get("n"):
        return "—"
    return f"p50 {s['p50']:.2f} s, p95 {s['p95']:.2f} s, max {s['max']:.2f} s (n={s['n']})"


def print_scenario(executor: str, label: str, r: dict[str, Any]) -> None:
    lat = r["latency"]
    log(f"  {executor} {label}: webhook → vendor order {_fmt(lat['webhook_to_vendor_order'])}")
    if "shipment_to_merchant_fulfilment" in lat:
        log(
            f"  {executor} {label}: shipment → merchant fulfilment {_fmt(lat['shipment_to_merchant_fulfilment'])}"
        )
    for name, parts in r["breakdown"].items():
        shown = ", ".join(f"{k} {v['p50']:.2f}/{v['p95']:.2f}" for k, v in parts.items() if v.get("n"))
        log(f"    {name} p50/p95 s: {shown}")
    o = r["runs"]["order_sync"]
    log(
        f"    runs: order_sync {o['asset_triggered']} event runs ({o['runs_that_pushed']} pushed), tracking_sync "
        f"{r['runs']['tracking_sync']['asset_triggered']}; receiver {_fmt(r['before_accepted']['receiver'])}; "
        f"delivery queue {_fmt(r['before_accepted']['delivery_queue'])}"
    )
    log(f"    checks: {json.dumps(r['checks'])}")


def table(path: Path) -> str:
    """The results file as a Markdown table: one row per executor and scenario."""
    data = json.loads(path.read_text())
    head = [
        "executor",
        "scenario",
        "webhook → vendor order p50 / p95 / max s",
        "shipment → merchant fulfilment p50 / p95 / max s",
        "order_sync event runs (pushing)",
        "tracking_sync event runs",
        "all pushed after s",
        "checks",
    ]
    rows = []
    for executor in sorted(data, key=lambda k: (not k.startswith("local"), k)):
        for label in SCENARIOS:
            r = (data.get(executor) or {}).get(label)
            if not r:
                continue
            lat = r["latency"]

            def three(s: dict[str, Any] | None) -> str:
                return f"{s['p50']} / {s['p95']} / {s['max']}" if s and s.get("n") else "—"

            o = r["runs"]["order_sync"]
            rows.append(
                [
                    executor,
                    f"{label} ({r['config']['orders']} order{'s' if r['config']['orders'] != 1 else ''})",
                    three(lat["webhook_to_vendor_order"]),
                    three(lat.get("shipment_to_merchant_fulfilment")),
                    f"{o['asset_triggered']} ({o['runs_that_pushed']})",
                    r["runs"]["tracking_sync"]["asset_triggered"],
                    r.get("all_pushed_after_seconds", "—"),
                    "all passed"
                    if all(r["checks"].values())
                    else "FAILED: " + ", ".join(k for k, v in r["checks"].items() if not v),
                ]
            )
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    for kind, title in (
        ("webhook_to_vendor_order", "webhook → vendor order"),
        ("shipment_to_merchant_fulfilment", "shipment → merchant fulfilment"),
    ):
        out += ["", breakdown_table(data, kind, title)]
    out += ["", task_table(data, "stream")]
    return "\n".join(out)


def task_table(data: dict[str, Any], scenario: str) -> str:
    """Per task of the scenario's event runs: between tasks (upstream end -> queued), start-up (queued ->
    running) and its own duration, p50 / p95 s, per executor."""
    keys = [k for k in sorted(data, key=lambda k: (not k.startswith("local"), k)) if scenario in data[k]]
    head = ["task"] + [f"{k} {what}" for k in keys for what in ("between tasks", "start-up", "own time")]
    out = [
        f"Event runs of the {scenario} scenario, per task instance: p50 / p95 s",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for dag_id in EVENT_DAGS:
        for task in (*CHAINS[dag_id], "summary"):
            cells = []
            for k in keys:
                figures = data[k][scenario]["runs"][dag_id]["tasks"].get(task) or {}
                for what in ("between_tasks", "startup", "duration"):
                    st = figures.get(what)
                    cells.append(f"{st['p50']:.2f} / {st['p95']:.2f}" if st and st.get("n") else "—")
            out.append("| " + " | ".join([f"{dag_id}.{task}"] + cells) + " |")
    return "\n".join(out)


def breakdown_table(data: dict[str, Any], kind: str, title: str) -> str:
    """Where the time goes: one row per segment, one column per executor and scenario (p50 / p95 s)."""
    columns = [
        (key, label)
        for key in sorted(data, key=lambda k: (not k.startswith("local"), k))
        for label in SCENARIOS
        if kind in ((data[key].get(label) or {}).get("breakdown") or {})
    ]
    chain = CHAINS["order_sync" if kind == "webhook_to_vendor_order" else "tracking_sync"]
    present = {name for key, label in columns for name in data[key][label]["breakdown"][kind]}
    segments = [name for name in (*SEGMENTS, *chain) if name in present]
    segments += sorted(present - set(segments))
    head = [f"{title}: p50 / p95 s"] + [f"{key} {label}" for key, label in columns]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in segments:
        cells = []
        for key, label in columns:
            seg = data[key][label]["breakdown"][kind].get(name)
            cells.append(f"{seg['p50']:.2f} / {seg['p95']:.2f}" if seg and seg.get("n") else "—")
        out.append("| " + " | ".join([name.replace("_", " ")] + cells) + " |")
    totals = [three_stat(data[key][label]["latency"].get(kind)) for key, label in columns]
    out.append("| " + " | ".join(["**latency**"] + totals) + " |")
    return "\n".join(out)


def three_stat(s: dict[str, Any] | None) -> str:
    return f"**{s['p50']:.2f} / {s['p95']:.2f}**" if s and s.get("n") else "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py --webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--executor", choices=("local", "celery", "both"), default="both")
    parser.add_argument(
        "--idle", type=int, default=5, help="orders paid one at a time on a quiet stack first (default 5)"
    )
    parser.add_argument("--stream-rate", type=float, default=1.0, help="orders per second (default 1)")
    parser.add_argument(
        "--stream-seconds", type=float, default=120.0, help="how long the stream lasts (0: no stream)"
    )
    parser.add_argument(
        "--ship-after", type=float, default=3.0, help="seconds from a vendor order to its shipment"
    )
    parser.add_argument("--burst", type=int, default=500, help="orders in the burst (0: no burst)")
    parser.add_argument("--burst-within", type=float, default=10.0, help="seconds the burst's payments take")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for each phase to finish"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every Airflow process of the stack (an experiment, e.g. "
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2); recorded in the results",
    )
    parser.add_argument(
        "--label", help="the results file's key for this run (default: the executor; one executor only)"
    )
    parser.add_argument("--home", help="working folder (default .bench/; the stack's is webhooks-<executor>)")
    parser.add_argument(
        "--json",
        default=str(ROOT / "docs" / "benchmarks-webhooks.json"),
        help="results file; each executor's entry is added or replaced",
    )
    parser.add_argument("--table", metavar="JSON", help="print a results file as a Markdown table and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(Path(args.table)))
        return 0
    executors = ("local", "celery") if args.executor == "both" else (args.executor,)
    if args.label and len(executors) > 1:
        parser.error("--label names one executor's results: give --executor local or celery")
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes KEY=VALUE")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = True
    for executor in executors:
        result = run_executor(executor, args)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[args.label or executor] = result
        path.write_text(dump(data) + "\n")
        log(f"• {executor}: results written to {path}")
        ok = ok and all(all(result[s]["checks"].values()) for s in SCENARIOS if s in result)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
