"""fetch_orders: merchant orders into the run scratch, and the sync horizon the first run records."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from ordersync.context import Env, RunParams
from ordersync.decisions import DecisionLog
from ordersync.ledger import watermark_after
from ordersync.models import MerchantOrder, OrderRef
from ordersync.platforms import open_merchant

log = logging.getLogger("ordersync")

MERCHANT_WATERMARK = "merchant_orders"
SYNC_HORIZON = "sync_horizon"  # orders created before it are history (initial_lookback_hours)
EVENT_DAG = "order_sync"  # the inbox rows this DAG's event runs take
STAGE_CHUNK = 500  # orders held in memory between merchant pages and the run scratch (fetch, decide)


def sync_horizon(env: Env, run: RunParams) -> datetime | None:
    """The sync horizon: recorded by the first run that writes (its start minus ``initial_lookback_hours``),
    the same for every run after it. A dry run on an empty ledger uses the horizon it would record."""
    stored = env.ledger.watermark(SYNC_HORIZON)
    if stored is not None:
        return stored
    horizon = datetime.now(UTC) - timedelta(hours=env.settings.initial_lookback_hours)
    if run.dry_run:
        return horizon
    horizon = env.ledger.watermark_once(SYNC_HORIZON, horizon)
    log.info(
        "first run: sync horizon recorded at %s (initial_lookback_hours=%d): orders created before it are "
        "history and are not pushed unless a manual run names them",
        horizon.isoformat(),
        env.settings.initial_lookback_hours,
    )
    return horizon


def fetch(env: Env, run: RunParams) -> dict[str, Any]:
    """Pull merchant orders into the run scratch: changed since the watermark plus open retries,
    exactly ``order_ids`` on a manual run, or the orders the webhook inbox names on an event run. Orders are
    staged as they arrive, ``STAGE_CHUNK`` at a time, so the task's memory does not grow with the backlog."""
    started = datetime.now(UTC)
    merchant = open_merchant(env.merchant, env.policy)
    batch: list[MerchantOrder] = []
    seen: set[str] = set()  # ids of the orders staged
    found: list[tuple[str, str, str]] = []  # their id, name and legacy id (a manual run reports the rest)
    bad: list[tuple[str, str, str]] = []
    newest: datetime | None = None
    horizon = sync_horizon(env, run)

    def stage(order: MerchantOrder) -> None:
        batch.append(order)
        seen.add(order.id)
        if run.order_ids:
            found.append((order.id, order.name, order.legacy_id))
        if len(batch) >= STAGE_CHUNK:
            env.ledger.stage_orders(run.run_id, batch, remember=not run.dry_run)
            batch.clear()

    events = 0
    try:
        if run.order_ids:
            source = merchant.by_refs(list(run.order_ids))
            log.info("manual run: fetching %d named order(s)", len(run.order_ids))
        elif run.event:
            taken = env.ledger.inbox.claim(EVENT_DAG, run.run_id)
            events = len(taken)
            ids = list(dict.fromkeys(e.order_id for e in taken))
            log.info(
                "event run: %d webhook event(s) waiting name %d order(s)%s",
                events,
                len(ids),
                "" if ids else " (an earlier run took them): nothing to fetch",
            )
            source = merchant.by_refs(ids) if ids else iter(())
        else:
            since = env.ledger.watermark(MERCHANT_WATERMARK) or horizon
            log.info(
                "fetching merchant orders updated since %s%s",
                since.isoformat() if since else "the beginning",
                "" if since != horizon else " (the sync horizon: no run has synced yet)",
            )
            # a large backlog is read with one bulk operation, a small one page by page (see backlog_since)
            source = merchant.backlog_since(since)
        for node, order, error in source:
            if order is None:
                bad.append(
                    (node.get("id") or "?", node.get("name") or node.get("id") or "?", error or "unreadable")
                )
                continue
            stage(order)
            if not run.order_ids and not run.event:
                newest = max(newest, order.updated_at) if newest else order.updated_at
        if not run.order_ids and not run.event:
            retry = [i for i in env.ledger.open_order_ids(run.vendors or None) if i not in seen]
            if retry:
                log.info("re-reading %d order(s) with a failed, unknown or unmapped vendor share", len(retry))
                for node, order, error in merchant.by_refs(retry):
                    if order is None:
                        bad.append((node.get("id") or "?", node.get("name") or "?", error or "unreadable"))
                    elif order.id not in seen:
                        stage(order)
    finally:
        merchant.close()
    env.ledger.stage_orders(run.run_id, batch, remember=not run.dry_run)
    for ref in run.order_ids:
        wanted = OrderRef.parse(ref)
        if wanted is not None and not any(wanted.matches(*named) for named in found):
            log.warning("order %s: not found at the merchant store", ref)
    decisions = DecisionLog(env.ledger, run)
    for order_id, name, error in bad:
        decisions.add(order_id, name, "", "failed", error)
        if not run.dry_run:
            env.ledger.mark_failed(order_id, "", name, error, maybe_committed=False)
    decisions.flush()
    log.info(
        "fetched %d merchant order(s), %d unreadable; %d merchant API call(s)",
        len(seen),
        len(bad),
        merchant.calls,
    )
    capped = watermark_after(newest, started)  # the watermark this read may store
    return {
        "staged": len(seen),
        "unreadable": len(bad),
        "newest_update": capped.isoformat() if capped else None,
        "merchant_calls": merchant.calls,
        "throttled": merchant.throttled,
        "events": events,
        "started_at": started.isoformat(),
    }
