"""write_merchant_fulfillments: the one task of a tracking_sync run that reads and writes the merchant store.

The vendor tasks read their stores in parallel and stage the vendor orders whose shipments need the merchant
(:mod:`ordersync.ledger.run_shipments`). This task takes the run's staged orders with **one** merchant client:
its cost-aware GraphQL client sees the whole bucket, so the requests pace themselves instead of fifty clients
drawing ``THROTTLED`` from one bucket they cannot see. One merchant order's vendor orders go one after
another (fulfilment orders change with each write); different merchant orders go concurrently, as wide as
the Shopify concurrency (``ORDERSYNC_SHOPIFY_CONCURRENCY``), and after a failure one at a time (as the push).

A vendor order cancelled at the vendor is staged too: here its ``vendor_cancelled`` alert is queued, the share
recorded and the merchant order tagged (:meth:`~ordersync.tracking.writeback.OrderSync.vendor_cancel`).

Exactly-once is ``ordersync_shipments``'s, as before: each write is bracketed ``in_flight`` → ``written``, a row
found ``in_flight`` is looked up by tracking number first. A vendor order the writer finished leaves the run
scratch; one it could not finish stays there, so the summary keeps that vendor's watermark and the next run
reads the order again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from ordersync.context import Env, RunParams, failure_reason
from ordersync.decisions import DecisionLog
from ordersync.ledger import Pair
from ordersync.ledger.run_shipments import StagedShipments
from ordersync.orders.fanout import Fanout
from ordersync.platforms import open_merchant, registry
from ordersync.tracking.model import from_json
from ordersync.tracking.writeback import KINDS, NO_SHIPMENT, OrderSync

log = logging.getLogger("ordersync")


def write_staged(env: Env, run: RunParams) -> dict[str, Any]:
    """Every vendor order the run's vendor tasks staged, written back to its merchant order; per-vendor counts."""
    started = datetime.now(UTC)
    scratch = env.ledger.run_shipments
    staged = scratch.staged(run.run_id)
    groups = [list(g) for _, g in groupby(staged, key=lambda s: s.merchant_order_id)]
    vendors = sorted({s.vendor for s in staged})
    log.info(
        "merchant writer: %d vendor order(s) of %d merchant order(s) from %d vendor(s) need the merchant store",
        len(staged),
        len(groups),
        len(vendors),
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    failed_orders: dict[str, list[str]] = defaultdict(list)
    if not staged:
        return _result(counts, failed_orders, 0, started)
    pairs: dict[tuple[str, str], Pair] = {}
    for vendor in vendors:
        ids = [s.vendor_order_id for s in staged if s.vendor == vendor]
        for vid, pair in env.ledger.pushed_for_vendor(vendor, vendor_order_ids=ids).items():
            pairs[(vendor, vid)] = pair
    decisions = DecisionLog(env.ledger, run)
    merchant = open_merchant(env.merchant, env.policy)
    lock = threading.Lock()

    def one(item: StagedShipments) -> bool:
        pair = pairs.get((item.vendor, item.vendor_order_id))
        order = from_json(item.payload)
        if pair is None:  # gone from the ledger since the vendor task read it: nothing of ours to write
            log.info(
                "vendor order %s at %r is no longer a pushed order in the ledger; not written back",
                order.name,
                item.vendor,
            )
            scratch.finished(run.run_id, item.vendor, item.vendor_order_id)
            return True
        notify = env.settings_for(item.vendor).notify_customer_on_tracking  # a vendor's own value wins
        sync = OrderSync(env, run, merchant, item.vendor, pair, order, decisions, notify)
        try:
            sync.sync()
        except Exception as exc:  # OrderSync decides per shipment; this is a bug or the ledger gone
            sync._say(NO_SHIPMENT, "failed", failure_reason(exc))
        with lock:
            counts[item.vendor].update(sync.outcomes)
            if sync.failures:
                failed_orders[item.vendor].append(pair.merchant_order_name)
        if sync.failures:
            if not run.dry_run:
                scratch.failed(run.run_id, item.vendor, item.vendor_order_id, "; ".join(sync.failures))
            return False
        scratch.finished(run.run_id, item.vendor, item.vendor_order_id)
        return True

    def step(group: list[StagedShipments]) -> Any:
        def run_group() -> bool:
            return all([one(item) for item in group])  # every item, even after one failed

        return run_group

    workers = registry.get("shopify").concurrency()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="merchant-writer") as pool:
            Fanout(pool).run([step(g) for g in groups])
        decisions.flush()
    finally:
        merchant.close()
    return _result(counts, failed_orders, merchant.calls, started)


def _result(
    counts: dict[str, Counter[str]], failed_orders: dict[str, list[str]], calls: int, started: datetime
) -> dict[str, Any]:
    totals = Counter[str]()
    for c in counts.values():
        totals.update(c)
    result = {
        "vendors": {
            v: {**{k: counts[v].get(k, 0) for k in KINDS}, "failed_orders": failed_orders.get(v, [])}
            for v in sorted(counts)
        },
        **{k: totals.get(k, 0) for k in KINDS},
        "failed_orders": sorted({o for orders in failed_orders.values() for o in orders}),
        "calls": calls,
        "started_at": started.isoformat(),
    }
    log.info(
        "merchant writer: %s; %d merchant call(s)",
        {k: result[k] for k in KINDS},
        calls,
    )
    return result
