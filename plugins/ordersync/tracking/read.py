"""tracking_sync's read side: which vendor orders to read, reading them, and the run's summary.

validate -> sync_vendor (one mapped task per vendor) -> summarise. Per vendor: the vendor orders changed since
that vendor's watermark (``tracking:<vendor>``), or those of the named merchant orders; each one ordersync
pushed goes to :class:`~ordersync.tracking.writeback.OrderSync`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ordersync import alerts
from ordersync.context import Env, RunParams
from ordersync.decisions import DecisionLog
from ordersync.ledger import Pair, watermark_after
from ordersync.ledger.run_shipments import StagedShipments
from ordersync.models import OrderRef
from ordersync.orders.validate import validate as validate_sync
from ordersync.platforms import StoreError, open_vendor
from ordersync.tracking.model import to_json
from ordersync.tracking.writeback import KINDS, OrderSync

log = logging.getLogger("ordersync")


STAGE_CHUNK = 500  # vendor orders held in memory between the vendor's pages and the run scratch
EVENT_DAG = "tracking_sync"  # the inbox rows this DAG's event runs take
RECONCILE_MARGIN = timedelta(
    seconds=60
)  # as order_sync's: events this much older than a full read are covered


def watermark_name(vendor: str) -> str:
    return f"tracking:{vendor}"


def claim_key(run: RunParams, vendor: str) -> str:
    """Each vendor task of an event run claims its own store's events, so one vendor's failure gives back only
    that vendor's."""
    return f"{run.run_id}#{vendor}"


def _event_vendors(env: Env, work: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An event run reads only the vendors whose waiting events name a vendor order ordersync pushed; events
    about other orders at those stores (the vendor's own sales) are marked done here, with no task started."""
    waiting = env.ledger.inbox.pending(EVENT_DAG)
    with_work = []
    for item in work:
        config = env.vendors[item["vendor"]]
        mine = [e for e in waiting if e.conn_id == config.conn_id]
        if not mine:
            continue
        pushed = env.ledger.pushed_for_vendor(item["vendor"], vendor_order_ids=[e.order_id for e in mine])
        if any(e.order_id in pushed for e in mine):
            with_work.append(item)
        else:
            env.ledger.inbox.dismiss([e.id for e in mine])
            log.info(
                "vendor %r: %d webhook event(s) name no vendor order ordersync pushed: nothing to read",
                item["vendor"],
                len(mine),
            )
    known = {env.vendors[w["vendor"]].conn_id for w in work}
    strays = [e.id for e in waiting if e.conn_id not in known]  # a disabled vendor's store, or one removed
    if strays:
        env.ledger.inbox.dismiss(strays, outcome="no_vendor")
    return with_work


# --------------------------------------------------------------------------------------------------------------
def validate(env: Env, run: RunParams) -> list[dict[str, Any]]:
    """The same checks as order_sync's (vendors, platforms, ledger reachable and migrated); returns the vendors
    to read, one mapped task each."""
    validate_sync(env, run)
    work = []
    for name, config in env.vendors.items():
        if run.vendors and name not in run.vendors:
            continue
        if not config.enabled:
            log.info("vendor %r is disabled in ordersync_vendors: its tracking is not read", name)
            continue
        work.append({"vendor": name})
    if run.event:
        work = _event_vendors(env, work)
        log.info("event run: only the vendors whose webhook events name an order ordersync pushed")
    log.info(
        "tracking_sync: %d vendor(s) to read: %s", len(work), ", ".join(w["vendor"] for w in work) or "none"
    )
    return work


# --------------------------------------------------------------------------------------------------------------
def _select(pushed: dict[str, Pair], refs: Iterable[str]) -> tuple[dict[str, Pair], list[str]]:
    """Pairs of the merchant orders named by GID, numeric id or name; and the refs that matched none."""
    chosen: dict[str, Pair] = {}
    missing = []
    for raw in refs:
        ref = OrderRef.parse(raw)
        hits = {
            vid: p
            for vid, p in pushed.items()
            if ref is not None and ref.matches(p.merchant_order_id, p.merchant_order_name)
        }
        if not hits:
            missing.append(raw.strip())
        chosen.update(hits)
    return chosen, missing


def sync_vendor(env: Env, run: RunParams, vendor: str) -> dict[str, Any]:
    """One vendor: every changed (or named) vendor order ordersync pushed, each shipment decided and logged."""
    config = env.vendors[vendor]
    decisions = DecisionLog(env.ledger, run)
    notify = env.settings_for(vendor).notify_customer_on_tracking
    store = open_vendor(config.platform, env.connections[config.conn_id], vendor, env.policy)
    scratch = env.ledger.run_shipments
    staged: list[StagedShipments] = []
    newest: datetime | None = None
    read = ours = staged_total = 0
    started = datetime.now(UTC)
    try:
        if run.event:
            taken = env.ledger.inbox.claim(EVENT_DAG, claim_key(run, vendor), conn_ids=[config.conn_id])
            wanted = list(dict.fromkeys(e.order_id for e in taken))
            pushed = env.ledger.pushed_for_vendor(vendor, vendor_order_ids=wanted) if wanted else {}
            log.info(
                "event run: %d webhook event(s) at %r name %d vendor order(s) ordersync pushed",
                len(taken),
                vendor,
                len(pushed),
            )
            source = store.shipped_orders(order_ids=list(pushed), only=set(pushed)) if pushed else iter(())
        elif run.order_ids:
            pushed, missing = _select(env.ledger.pushed_for_vendor(vendor), run.order_ids)
            for ref in missing:
                log.info(
                    "order %s: no vendor order at %r pushed by ordersync; no tracking to read", ref, vendor
                )
            source = store.shipped_orders(order_ids=list(pushed), only=set(pushed)) if pushed else iter(())
            log.info("manual run: re-reading %d vendor order(s) at %r", len(pushed), vendor)
        else:
            pushed = env.ledger.pushed_for_vendor(vendor)
            since = env.ledger.watermark(watermark_name(vendor))
            log.info(
                "reading vendor %r orders updated since %s",
                vendor,
                since.isoformat() if since else "the beginning",
            )
            source = store.shipped_orders(since=since, only=set(pushed))
        for order in source:
            read += 1
            if not run.order_ids and not run.event and order.updated_at is not None:
                newest = max(newest, order.updated_at) if newest else order.updated_at
            pair = pushed.get(order.id)
            if pair is None:
                continue  # not an order ordersync pushed
            ours += 1
            # decided here when it needs no merchant call; else staged for write_merchant_fulfillments, the
            # run's one merchant client (a vendor-side cancellation too: its merchant order is tagged there)
            sync = OrderSync(env, run, None, vendor, pair, order, decisions, notify, vendor_store=store)
            if not sync.triage():
                staged.append(StagedShipments(vendor, order.id, pair.merchant_order_id, to_json(sync.order)))
                if len(staged) >= STAGE_CHUNK:
                    staged_total += scratch.stage(run.run_id, staged)
                    staged = []
        staged_total += scratch.stage(run.run_id, staged)
        decisions.flush()
    except StoreError as exc:  # the vendor store could not be read: nothing decided for this vendor
        decisions.flush()
        log.error(
            "vendor %r: cannot read its orders' tracking: %s (its watermark stays; retried on the next run)",
            vendor,
            exc,
        )
        alerts.queue(
            env.ledger,
            run.run_id,
            [
                alerts.Alert(
                    kind="failed",
                    order="(every changed order)",
                    vendor=vendor,
                    operation="tracking read",
                    message=f"cannot read the vendor's orders: {exc}",
                    suggestion=alerts.suggest("read", str(exc), vendor, config.conn_id),
                )
            ],
            run.dry_run,
        )
        raise
    finally:
        store.close()
    capped = watermark_after(newest, started)  # the watermark this read may store
    result = {
        "vendor": vendor,
        **{k: decisions.counts.get(k, 0) for k in KINDS},
        "failed_orders": decisions.failed,
        "read": read,
        "pushed_orders": ours,
        "staged": staged_total,
        "newest": capped.isoformat() if capped else None,
        "calls": store.calls,
        "started_at": started.isoformat(),
    }
    if staged_total:
        log.info(
            "vendor %r: %d vendor order(s) with shipments for the merchant staged for write_merchant_fulfillments",
            vendor,
            staged_total,
        )
    log.info("vendor %s tracking: %s", vendor, {k: v for k, v in result.items() if k != "failed_orders"})
    return result


# --------------------------------------------------------------------------------------------------------------
def summarise(
    env: Env,
    run: RunParams,
    results: list[dict[str, Any]],
    vendors: list[str],
    writer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Totals; each vendor's watermark moves only when its task decided every order (it returned a result with no
    failure) and the merchant writer finished every order it staged, never in a dry run or a manual selection
    of orders. The run scratch is cleared."""
    totals: Counter[str] = Counter()
    failed: list[str] = []
    moved: dict[str, str] = {}
    left = env.ledger.run_shipments.left(
        run.run_id
    )  # staged and not finished: the writer failed them or died
    done = {r["vendor"]: r for r in results if not left.get(r["vendor"])}
    for r in [*results, *([writer] if writer else [])]:
        totals.update({k: int(r.get(k, 0)) for k in KINDS})
    for r in results:
        failed += [f"{o} → {r['vendor']}" for o in r.get("failed_orders") or []]
    for vendor, w in ((writer or {}).get("vendors") or {}).items():
        failed += [f"{o} → {vendor}" for o in w.get("failed_orders") or []]
    for r in done.values():
        if run.dry_run or run.order_ids or r.get("failed"):
            continue
        if run.event:
            env.ledger.inbox.finish(claim_key(run, r["vendor"]))
            continue
        if r.get("started_at") and r["vendor"] in env.vendors:
            env.ledger.inbox.reconcile(
                EVENT_DAG,
                datetime.fromisoformat(r["started_at"]) - RECONCILE_MARGIN,
                conn_ids=[env.vendors[r["vendor"]].conn_id],
            )
        if not r.get("newest"):
            continue
        env.ledger.set_watermark(watermark_name(r["vendor"]), datetime.fromisoformat(r["newest"]))
        moved[r["vendor"]] = r["newest"]
    undecided = [v for v in vendors if v not in done]
    if run.event and not run.dry_run:
        for r in results:
            if r.get("failed"):  # its events stay for the next run; the failed shipments are retried anyway
                env.ledger.inbox.release(claim_key(run, r["vendor"]))
        for vendor in undecided:
            env.ledger.inbox.release(claim_key(run, vendor))
    env.ledger.run_shipments.clear(run.run_id)
    unwritten = sorted(v for v in left if v in vendors)
    log.info(
        "tracking run %s: %s; watermark %s%s%s",
        run.run_id,
        dict(totals) or "nothing to write back",
        ", ".join(f"{v} → {t}" for v, t in moved.items()) or "unchanged",
        f"; not decided (task failed): {', '.join(v for v in undecided if v not in left)}"
        if any(v not in left for v in undecided)
        else "",
        f"; not all written to the merchant (read again next run): "
        f"{', '.join(f'{v} ({left[v]} order(s))' for v in unwritten)}"
        if unwritten
        else "",
    )
    return {"totals": dict(totals), "failed": failed, "watermarks": moved, "undecided": undecided}
