"""The order push, step by step, as plain Python the DAG's tasks call.

validate -> fetch -> decide -> push (one call per vendor) -> summarise.
Steps hand each other ids and counts; merchant orders travel through the
ledger's run scratch, and the ledger records every decision.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ordersync import alerts, lifecycle, rules
from ordersync.ledger import Ledger
from ordersync.models import Mapping, MerchantOrder, VendorOrderDraft, VendorOrderRef
from ordersync.platforms import (PermanentError, StoreConnection, StoreError, TransientError, VendorStore,
                                 capabilities, open_merchant, open_vendor)
from ordersync.platforms import registry
from ordersync.platforms.http import RetryPolicy
from ordersync.settings import Settings, SettingsError, VendorConfig
from ordersync.split import build_draft, split_by_vendor

log = logging.getLogger("ordersync")

MERCHANT_WATERMARK = "merchant_orders"
SYNC_HORIZON = "sync_horizon"      # orders created before it are history (initial_lookback_hours)
CREATE_CYCLES = 3          # create -> unknown outcome -> look up -> create again, at most this often


@dataclass
class Env:
    """Everything a step needs, resolved from Airflow Variables and Connections (see ``airflow_env``)."""
    settings: Settings
    vendors: dict[str, VendorConfig]
    merchant: StoreConnection
    connections: dict[str, StoreConnection]        # vendor conn_id -> connection
    ledger: Ledger
    webhook: StoreConnection | None = None           # failure_alerts.webhook_conn_id
    smtp_conn_id: str | None = None                  # e-mail alerts (failure_alerts.emails)
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class RunParams:
    run_id: str
    order_ids: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    dry_run: bool = False

    @classmethod
    def from_params(cls, run_id: str, params: dict[str, Any]) -> "RunParams":
        def strings(name: str) -> tuple[str, ...]:
            value = params.get(name) or []
            if isinstance(value, str):
                value = [v for v in value.replace(",", "\n").splitlines()]
            if not isinstance(value, (list, tuple)):
                raise SettingsError(f"param {name} must be a list of strings, got {type(value).__name__}")
            return tuple(str(v).strip() for v in value if str(v).strip())

        dry_run = params.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise SettingsError(f"param dry_run must be true or false, got {dry_run!r}")
        return cls(run_id=run_id, order_ids=strings("order_ids"), vendors=strings("vendors"), dry_run=dry_run)


def decision_line(order_name: str, vendor: str, outcome: str, reason: str, dry_run: bool = False) -> str:
    prefix = "[dry run] " if dry_run else ""
    return f"{prefix}order {order_name} → vendor {vendor!r}: {outcome} — {reason}"


class Decisions:
    """Logs one line per (order, vendor) and buffers the ledger rows (none in a dry run).

    Safe to share between the threads pushing one vendor's orders: one line and one ledger row at a time."""

    def __init__(self, ledger: Ledger, run: RunParams) -> None:
        self.ledger = ledger
        self.run = run
        self.rows: list[dict[str, str]] = []
        self.counts: Counter[str] = Counter()
        self.failed: list[str] = []
        self.quiet: Counter[str] = Counter()     # shares not pushed for a reason already reported, per rule
        self._lock = threading.Lock()

    def add(self, order_id: str, order_name: str, vendor: str, outcome: str, reason: str,
            operation: str = "") -> None:
        line = decision_line(order_name, vendor or "(none)", outcome, reason, self.run.dry_run)
        with self._lock:
            (log.warning if outcome == "failed" else log.info)(line)
            self.counts[outcome] += 1
            if outcome == "failed":
                self.failed.append(f"{order_name} → {vendor}")
            if not self.run.dry_run:
                self.rows.append({"merchant_order_id": order_id, "merchant_order_name": order_name,
                                  "vendor": vendor, "outcome": outcome, "reason": reason, "operation": operation})
                if len(self.rows) >= 200:
                    self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.ledger.record_decisions(self.run.run_id, self.rows)
            self.rows = []


# --------------------------------------------------------------------------------------------------------------
def validate(env: Env, run: RunParams) -> dict[str, Any]:
    """Everything the run needs exists and makes sense; the ledger schema is current."""
    try:
        unknown = [v for v in run.vendors if v not in env.vendors]
        if unknown:
            raise SettingsError(f"param vendors names vendor(s) not in ordersync_vendors: {', '.join(unknown)}")
        for vendor in env.vendors.values():
            try:
                capabilities(vendor.platform)
            except StoreError as exc:
                raise SettingsError(f"vendor {vendor.vendor}: {exc}") from None
    except SettingsError as exc:
        log.error("configuration problem, nothing was written: %s", exc)
        raise
    env.ledger.check()        # LedgerUnavailable: transient, the task is retried
    from ordersync.ledger.migrate import LedgerTooNew

    try:
        version = env.ledger.migrate()
    except LedgerTooNew as exc:          # permanent: the ledger belongs to a newer ordersync
        log.error("configuration problem, nothing was written: %s", exc)
        raise SettingsError(str(exc)) from None
    env.ledger.purge_stale_runs()
    log.info("settings valid: %d vendor(s) configured, order sync %s, dry_run=%s, ledger schema %s",
             len(env.vendors), "on" if env.settings.order_sync_enabled else "OFF", run.dry_run, version)
    return {"vendors": len(env.vendors), "order_ids": len(run.order_ids), "dry_run": run.dry_run}


# --------------------------------------------------------------------------------------------------------------
def sync_horizon(env: Env, run: RunParams) -> datetime | None:
    """The sync horizon: recorded by the first run that writes (its start minus ``initial_lookback_hours``),
    the same for every run after it. A dry run on an empty ledger uses the horizon it would record."""
    stored = env.ledger.watermark(SYNC_HORIZON)
    if stored is not None:
        return stored
    horizon = datetime.now(timezone.utc) - timedelta(hours=env.settings.initial_lookback_hours)
    if run.dry_run:
        return horizon
    horizon = env.ledger.watermark_once(SYNC_HORIZON, horizon)
    log.info("first run: sync horizon recorded at %s (initial_lookback_hours=%d): orders created before it are "
             "history and are not pushed unless a manual run names them", horizon.isoformat(),
             env.settings.initial_lookback_hours)
    return horizon


STAGE_CHUNK = 500    # orders held in memory between merchant pages and the run scratch (fetch, decide)


def fetch(env: Env, run: RunParams) -> dict[str, Any]:
    """Pull merchant orders into the run scratch: changed since the watermark plus open retries,
    or exactly ``order_ids`` on a manual run. Orders are staged as they arrive, ``STAGE_CHUNK`` at a time,
    so the task's memory does not grow with the backlog."""
    merchant = open_merchant(env.merchant, env.policy)
    batch: list[MerchantOrder] = []
    seen: set[str] = set()                 # ids of the orders staged
    found: set[str] = set()                # their ids, names and legacy ids (a manual run reports the rest)
    bad: list[tuple[str, str, str]] = []
    newest: datetime | None = None
    horizon = sync_horizon(env, run)

    def stage(order: MerchantOrder) -> None:
        batch.append(order)
        seen.add(order.id)
        if run.order_ids:
            found.update((order.id, order.name, order.legacy_id))
        if len(batch) >= STAGE_CHUNK:
            env.ledger.stage_orders(run.run_id, batch)
            batch.clear()

    try:
        if run.order_ids:
            source = merchant.by_refs(list(run.order_ids))
            log.info("manual run: fetching %d named order(s)", len(run.order_ids))
        else:
            since = env.ledger.watermark(MERCHANT_WATERMARK) or horizon
            log.info("fetching merchant orders updated since %s%s", since.isoformat() if since else "the beginning",
                     "" if since != horizon else " (the sync horizon: no run has synced yet)")
            source = merchant.changed_since(since)
        for node, order, error in source:
            if order is None:
                bad.append((node.get("id") or "?", node.get("name") or node.get("id") or "?", error or "unreadable"))
                continue
            stage(order)
            if not run.order_ids:
                newest = max(newest, order.updated_at) if newest else order.updated_at
        if not run.order_ids:
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
    env.ledger.stage_orders(run.run_id, batch)
    if run.order_ids:
        missing = [ref for ref in run.order_ids
                   if ref not in found and ref.rsplit("/", 1)[-1] not in found and f"#{ref}" not in found]
        for ref in missing:
            log.warning("order %s: not found at the merchant store", ref)
    decisions = Decisions(env.ledger, run)
    for order_id, name, error in bad:
        decisions.add(order_id, name, "", "failed", error)
        if not run.dry_run:
            env.ledger.mark_failed(order_id, "", name, error, maybe_committed=False)
    decisions.flush()
    log.info("fetched %d merchant order(s), %d unreadable; %d merchant API call(s)", len(seen), len(bad),
             merchant.calls)
    return {"staged": len(seen), "unreadable": len(bad), "newest_update": newest.isoformat() if newest else None,
            "merchant_calls": merchant.calls, "throttled": merchant.throttled}


# --------------------------------------------------------------------------------------------------------------
WORK_KINDS = ("create", "update", "cancel")


def decide(env: Env, run: RunParams) -> list[dict[str, Any]]:
    """Apply the order-level rules and split; returns each vendor's work: order ids to create, update, cancel."""
    ids = env.ledger.staged_order_ids(run.run_id)
    decisions = Decisions(env.ledger, run)
    work: dict[str, dict[str, list[str]]] = defaultdict(lambda: {kind: [] for kind in WORK_KINDS})
    raised: list[alerts.Alert] = []
    horizon = sync_horizon(env, run)
    for start in range(0, len(ids), STAGE_CHUNK):      # a chunk at a time: memory stays flat with the backlog
        chunk = ids[start:start + STAGE_CHUNK]
        position = {order_id: n for n, order_id in enumerate(chunk)}
        orders = sorted(env.ledger.staged_orders(run.run_id, chunk), key=lambda o: position[o.id])
        pairs = env.ledger.pairs(chunk)
        for order in orders:
            try:
                _decide_order(env, run, order, pairs, decisions, work, raised, horizon)
            except Exception as exc:  # a bug on one order never stops the batch
                decisions.add(order.id, order.name, "", "failed", f"could not decide: {type(exc).__name__}: {exc}",
                              "decide")
                if not run.dry_run:
                    env.ledger.mark_failed(order.id, "", order.name, str(exc), maybe_committed=False)
    decisions.flush()
    alerts.queue(env.ledger, run.run_id, raised, run.dry_run)
    if decisions.quiet:
        log.info("%d (order, vendor) share(s) not pushed for a reason reported once already: %s",
                 sum(decisions.quiet.values()), dict(decisions.quiet))
    log.info("decided %d order(s): %s; vendor work: %s", len(ids), dict(decisions.counts) or "no decisions yet",
             {v: {k: len(ids) for k, ids in w.items() if ids} for v, w in work.items()} or "none")
    return [{"vendor": vendor, "orders": sum(len(ids) for ids in w.values()), **w}
            for vendor, w in sorted(work.items())]


def _decide_order(env: Env, run: RunParams, order: MerchantOrder, pairs: dict, decisions: Decisions,
                  work: dict[str, dict[str, list[str]]], raised: list[alerts.Alert], horizon: datetime | None) -> None:
    order_block = rules.first_block(rules.order_rules(env.settings, order))
    history = rules.sync_horizon(env.settings, order, horizon, named=bool(run.order_ids))
    shares = split_by_vendor(order)
    pushed_vendors = [v for (oid, v), p in pairs.items() if oid == order.id and p.state == "pushed"]
    if not shares and not pushed_vendors:
        decisions.add(order.id, order.name, "", "skipped", "order has no line items left to push")
    if (order.id, "") in pairs and not run.dry_run:
        env.ledger.mark_not_pushed(order.id, "", order.name, "skipped", "order is readable again")
    for vendor in dict.fromkeys([*shares, *pushed_vendors]):
        if run.vendors and vendor not in run.vendors:
            continue     # this run was asked for other vendors only
        pair = pairs.get((order.id, vendor))
        if pair is not None and pair.state == "pushed":
            _decide_pushed(env, run, order, vendor, shares.get(vendor, []), pair, decisions, work, raised)
            continue
        if pair is None or pair.state not in ("in_flight", "unknown"):   # those may be at the vendor: look first
            never = rules.first_block([rules.merchant_fulfilled(order, shares.get(vendor, [])),
                                       history if pair is None or pair.state == "skipped" else rules.allow("", "")])
            if never is not None:
                if (pair is not None and pair.state == "skipped" and pair.hold_kind == never.hold_kind
                        and not run.order_ids):               # a manual run naming the order is always answered
                    decisions.quiet[never.rule] += 1          # said once, when it was first decided
                    continue
                decisions.add(order.id, order.name, vendor, never.outcome, never.reason)
                if not run.dry_run and vendor:
                    env.ledger.mark_not_pushed(order.id, vendor, order.name, never.outcome, never.reason,
                                               never.hold_kind, run.run_id)
                continue
        verdict = rules.vendor_eligible(env.settings, vendor, env.vendors)
        if verdict.allow and order_block is not None:
            verdict = order_block
        if not verdict.allow:
            decisions.add(order.id, order.name, vendor, verdict.outcome, verdict.reason)
            if not run.dry_run and vendor:
                env.ledger.mark_not_pushed(order.id, vendor, order.name, verdict.outcome, verdict.reason,
                                           verdict.hold_kind, run.run_id)
            continue
        if not run.dry_run and (pair is None or pair.state in ("held", "skipped")):
            env.ledger.mark_not_pushed(order.id, vendor, order.name, "queued", "queued for push", None, run.run_id)
        work[vendor]["create"].append(order.id)


def _decide_pushed(env: Env, run: RunParams, order: MerchantOrder, vendor: str, lines: list, pair: Any,
                   decisions: Decisions, work: dict[str, dict[str, list[str]]], raised: list[alerts.Alert]) -> None:
    """An order already at the vendor: cancel it, update it, flag its line items, or leave it."""
    pushed_as = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
    config = env.vendors.get(vendor)
    if config is None or not config.enabled or config.platform not in env.settings.order_push_platforms:
        decisions.add(order.id, order.name, vendor, "skipped",
                      f"already pushed as {pushed_as}; vendor no longer active, changes are not forwarded")
        return
    if not env.settings.order_sync_enabled:
        decisions.add(order.id, order.name, vendor, "skipped",
                      f"order sync is switched off (order_sync_enabled=false): changes to {pushed_as} wait")
        return
    if order.cancelled_at is not None:
        if pair.cancel_state == "cancelled":
            decisions.add(order.id, order.name, vendor, "unchanged", f"{pushed_as} is already cancelled")
        elif pair.cancel_state == "refused":
            decisions.add(order.id, order.name, vendor, "unchanged",
                          f"{pushed_as} could not be cancelled earlier and was reported: {pair.last_error or ''}")
        else:
            work[vendor]["cancel"].append(order.id)
        return
    manual = _line_change(env, run, order, vendor, lines, pair, raised)
    fields = lifecycle.synced_fields(config.platform, lifecycle.order_fields(order, env.settings))
    if lifecycle.fingerprint_of(fields) != pair.fingerprint or pair.last_error:
        work[vendor]["update"].append(order.id)      # the push task logs the line (and mentions the flag)
    elif manual:
        decisions.add(order.id, order.name, vendor, "manual", manual)
    else:
        decisions.add(order.id, order.name, vendor, "unchanged", f"already pushed as {pushed_as}; nothing changed")


def _line_change(env: Env, run: RunParams, order: MerchantOrder, vendor: str, lines: list, pair: Any,
                 raised: list[alerts.Alert]) -> str | None:
    """Line items differ from what was pushed: flag for a human (alerted once per change), never synced."""
    current = lifecycle.line_fingerprint(lines)
    if pair.line_fingerprint is None or current == pair.line_fingerprint:
        return None
    what = (f"line items changed after the push ({lifecycle.describe_lines(lines)}); not synced — change vendor "
            f"order {pair.vendor_order_name} by hand")
    if current == pair.manual_fingerprint:
        return what + " (flagged and alerted earlier)"
    if not run.dry_run:
        env.ledger.update_pushed(order.id, vendor, manual_fingerprint=current)
        raised.append(alerts.Alert("manual", order.name, vendor, "line_items", what, alerts.SUGGESTIONS["manual"]))
    return what + " (flagged; in this run's alert)"


# --------------------------------------------------------------------------------------------------------------
PUSH_CHUNK = STAGE_CHUNK


def push_vendor(env: Env, run: RunParams, vendor: str, work: dict[str, Any]) -> dict[str, Any]:
    """This vendor's share of the run: create new vendor orders exactly once, then forward edits and
    cancellations to the ones it already has. A failure of the vendor as a whole (its store cannot be opened,
    the ledger is unreachable) is queued for the run's alert, naming every order it left undone."""
    try:
        return _push_vendor(env, run, vendor, work)
    except Exception as exc:
        undone = sum(len(work.get(kind, [])) for kind in WORK_KINDS)
        reason = failure_reason(exc)
        log.error("vendor %r: the push stopped: %s; %d order(s) left for the next run", vendor, reason, undone)
        try:
            config = env.vendors.get(vendor)
            alerts.queue(env.ledger, run.run_id, [alerts.Alert(
                "failed", f"({undone} order(s))", vendor, "push", reason,
                alerts.suggest("create", reason, vendor, config.conn_id if config else ""))], run.dry_run)
        except Exception as again:        # the ledger itself is down: the summary reports the failed task
            log.error("could not queue the alert either: %s", failure_reason(again))
        raise


def _push_vendor(env: Env, run: RunParams, vendor: str, work: dict[str, Any]) -> dict[str, Any]:
    """Orders go to the store concurrently, up to the platform's ``concurrency()`` at a time (Shopify's client
    also paces them by its cost bucket); each (order, vendor) pair is handled by exactly one thread, and
    the ledger brackets each create as before."""
    config = env.vendors[vendor]
    caps = capabilities(config.platform)
    store = open_vendor(config.platform, env.connections[config.conn_id], vendor, env.policy)
    decisions = Decisions(env.ledger, run)
    raised: list[alerts.Alert] = []
    workers = 1 if run.dry_run else registry.get(config.platform).concurrency()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push") as pool:
            fanout = _Fanout(pool)
            creates = list(work.get("create", []))
            for start in range(0, len(creates), PUSH_CHUNK):
                orders = env.ledger.staged_orders(run.run_id, creates[start:start + PUSH_CHUNK])
                shares = {o.id: split_by_vendor(o).get(vendor, []) for o in orders}
                mappings, mapping_error = _mappings(env, run, store, vendor,
                                                    [l.sku for ls in shares.values() for l in ls if l.sku])
                fanout.run([(decisions, order, vendor, _push_one, env, run, store, config, caps, order,
                              shares[order.id], mappings, mapping_error, decisions) for order in orders])
            cancels = set(work.get("cancel", []))
            edits = [*work.get("update", []), *cancels]
            for start in range(0, len(edits), PUSH_CHUNK):
                changed = env.ledger.staged_orders(run.run_id, edits[start:start + PUSH_CHUNK])
                pairs = env.ledger.pairs([o.id for o in changed], vendor)
                fanout.run([(decisions, order, vendor, _cancel_one if order.id in cancels else _update_one, env,
                              run, store, config, order, split_by_vendor(order).get(vendor, []),
                              pairs[(order.id, vendor)], decisions, raised) for order in changed])
        decisions.flush()
    finally:
        store.close()
    alerts.queue(env.ledger, run.run_id, raised, run.dry_run)
    kinds = ("pushed", "updated", "cancelled", "manual", "unchanged", "held", "skipped", "failed")
    result = {"vendor": vendor, **{k: decisions.counts.get(k, 0) for k in kinds},
              "failed_orders": decisions.failed, "calls": store.calls, "throttled": store.throttled}
    log.info("vendor %s: %s", vendor, {k: v for k, v in result.items() if k != "failed_orders"})
    return result


class _Fanout:
    """Runs one vendor's steps on the pool while the store answers cleanly.

    The first step goes alone: its answer tells the client what the request costs and what the bucket holds,
    so the rest fan out already paced (and the store sees the batch start in order). Once a step fails or a
    create's outcome was unknown (found by its marker afterwards), the remaining steps run one at a time, in
    order: a struggling store gets no burst of concurrent retries, and a marker lookup has no other creates
    racing it."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.serial = threading.Lock()
        self.degraded = threading.Event()

    def _one(self, args: tuple[Any, ...]) -> None:
        if self.degraded.is_set():
            with self.serial:
                clean = _guarded(*args)
        else:
            clean = _guarded(*args)
        if not clean:
            self.degraded.set()

    def run(self, calls: list[tuple[Any, ...]]) -> None:
        """``_guarded(*args)`` for each entry; returns when all are done (they never raise)."""
        if not calls:
            return
        self._one(calls[0])
        if self.degraded.is_set() or len(calls) == 1:
            for args in calls[1:]:
                self._one(args)
            return
        for future in [self.pool.submit(self._one, args) for args in calls[1:]]:
            future.result()


def failure_reason(exc: Exception) -> str:
    """A failed line's reason: a store error already names the store and its answer; anything else its type."""
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"


def _guarded(decisions: Decisions, order: MerchantOrder, vendor: str, step: Callable[..., Any], *args: Any) -> bool:
    """Run one order's step; whatever it raises becomes that order's ``failed`` line (with the operation the
    run's alert names), and the batch goes on. Returns whether the store answered cleanly (the step raised
    nothing and did not return False)."""
    try:
        return step(*args) is not False
    except Exception as exc:
        decisions.add(order.id, order.name, vendor, "failed", failure_reason(exc), OPERATIONS.get(step, ""))
        return False


def _update_one(env: Env, run: RunParams, store: VendorStore, config: VendorConfig, order: MerchantOrder,
                lines: list, pair: Any, decisions: Decisions, raised: list[alerts.Alert]) -> None:
    """Forward order-level edits (the fields the platform accepts on an existing order)."""
    fields = lifecycle.synced_fields(config.platform, lifecycle.order_fields(order, env.settings))
    changed = lifecycle.changed_fields(pair.synced_fields, fields) or ["(retrying the last failed edit)"]
    manual = _line_change(env, run, order, config.vendor, lines, pair, raised)
    note = f"; {manual}" if manual else ""
    target = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
    if run.dry_run:
        decisions.add(order.id, order.name, config.vendor, "updated", f"would update {target}: {', '.join(changed)}{note}")
        return
    try:
        store.update_order(pair.vendor_order_id, fields, order.name)
    except StoreError as exc:
        env.ledger.update_pushed(order.id, config.vendor, last_error=str(exc))
        raise
    env.ledger.update_pushed(order.id, config.vendor, fingerprint=lifecycle.fingerprint_of(fields),
                             synced_fields=json.dumps(fields, sort_keys=True, default=str), last_error=None,
                             reason=f"updated: {', '.join(changed)}")
    decisions.add(order.id, order.name, config.vendor, "updated", f"{target}: {', '.join(changed)}{note}")


def _cancel_one(env: Env, run: RunParams, store: VendorStore, config: VendorConfig, order: MerchantOrder,
                lines: list, pair: Any, decisions: Decisions, raised: list[alerts.Alert]) -> None:
    """Cancel the vendor order; one that cannot be cancelled any more is reported once, not retried."""
    target = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
    reason = lifecycle.cancel_reason(order)
    if run.dry_run:
        decisions.add(order.id, order.name, config.vendor, "cancelled", f"would cancel {target} (reason {reason})")
        return
    try:
        state = store.order_state(pair.vendor_order_id)
        refused = None
        if state.cancelled:
            how = "was already cancelled at the vendor"
        elif state.fulfilled:
            refused = f"cannot cancel {target}: it is {state.status} at the vendor"
        else:
            try:
                store.cancel_order(pair.vendor_order_id, reason, f"Cancelled at the marketplace: {order.name}")
                how = f"cancelled (reason {reason}, restocked, buyer not notified, no refund at the vendor)"
            except PermanentError as exc:
                refused = f"cannot cancel {target}: {exc}"
    except StoreError as exc:
        env.ledger.update_pushed(order.id, config.vendor, last_error=str(exc))
        raise
    if refused:
        env.ledger.update_pushed(order.id, config.vendor, cancel_state="refused", last_error=None, reason=refused)
        raised.append(alerts.Alert("cancel_refused", order.name, config.vendor, "cancel", refused,
                                   alerts.SUGGESTIONS["cancel_refused"]))
        decisions.add(order.id, order.name, config.vendor, "manual", refused + " — reported, not retried")
        return
    env.ledger.update_pushed(order.id, config.vendor, cancel_state="cancelled", cancelled_at=order.cancelled_at,
                             last_error=None, reason=how)
    decisions.add(order.id, order.name, config.vendor, "cancelled", f"{target} {how}")


def _mappings(env: Env, run: RunParams, store: VendorStore, vendor: str,
              skus: list[str]) -> tuple[dict[str, Mapping], str | None]:
    """Cached mappings, refreshed from the vendor catalog for SKUs the cache lacks."""
    wanted = list(dict.fromkeys(skus))
    found = env.ledger.cached_mappings(vendor, wanted)
    missing = [s for s in wanted if s not in found]
    if not missing:
        return found, None
    try:
        fresh = store.resolve_skus(missing)
    except StoreError as exc:
        return found, f"cannot read the vendor catalog to map SKUs: {exc}"
    if fresh and not run.dry_run:
        env.ledger.store_mappings(vendor, fresh.values())
    log.info("vendor %s: %d SKU(s) looked up in the vendor catalog, %d found", vendor, len(missing), len(fresh))
    return {**found, **fresh}, None


def _push_one(env: Env, run: RunParams, store: VendorStore, config: VendorConfig, caps: dict[str, Any],
              order: MerchantOrder, lines: list, mappings: dict[str, Mapping], mapping_error: str | None,
              decisions: Decisions) -> bool | None:
    vendor = config.vendor
    if not lines:
        decisions.add(order.id, order.name, vendor, "skipped", "no line items for this vendor any more")
        return
    unmapped = [l for l in lines if not l.sku or l.sku not in mappings]
    if unmapped and mapping_error:
        raise StoreError(mapping_error)
    verdict = rules.unmapped_products(env.settings, lines, mappings)
    if not verdict.allow:
        decisions.add(order.id, order.name, vendor, verdict.outcome, verdict.reason)
        if not run.dry_run:
            env.ledger.mark_not_pushed(order.id, vendor, order.name, verdict.outcome, verdict.reason,
                                       verdict.hold_kind, run.run_id)
        return
    draft = build_draft(order, config, lines, mappings, env.settings, bool(caps.get("locations")))
    summary = f"{len(lines)} line(s), {sum(l.quantity for l in lines)} item(s); {verdict.reason}"
    if run.dry_run:
        decisions.add(order.id, order.name, vendor, "pushed", f"would create the vendor order: {summary}")
        return
    sync = lifecycle.sync_record(config.platform, order, env.settings, lines)
    try:
        ref, how = push_exactly_once(env, store, draft, run.run_id, sync)
    except PermanentError as exc:
        stale = [l.sku for l in lines if l.sku and l.sku in mappings]
        if not (stale and registry.get(config.platform).stale_mapping.search(str(exc))):
            raise
        env.ledger.forget_mappings(vendor, stale)      # e.g. the vendor deleted the product since it was cached
        raise PermanentError(f"{exc} — the vendor store no longer has the product this order's SKU mapping "
                             f"points at; the mapping of {', '.join(stale)} is dropped and looked up again on the "
                             "next run", status=exc.status, code=exc.code) from None
    note = ""
    if draft.location_id and hasattr(store, "assign_location"):
        try:
            note = "; " + store.assign_location(ref.id, draft.location_id)
        except StoreError as exc:
            note = f"; WARNING location not set: {exc}"
            log.warning("vendor order for %s at %r was created, but its location was not set: %s", order.name,
                        vendor, exc)
    decisions.add(order.id, order.name, vendor, "pushed",
                  f"{how} vendor order {ref.name} ({ref.id}): {summary}{note}")
    return not how.startswith("found")      # found by its marker: an earlier answer was lost


def push_exactly_once(env: Env, store: VendorStore, draft: VendorOrderDraft, run_id: str,
                      sync: dict[str, str] | None = None) -> tuple[VendorOrderRef, str]:
    """Create the vendor order unless an earlier attempt already did; the ledger brackets every create."""
    ledger, vendor, name = env.ledger, draft.vendor, draft.merchant_order_name
    pair = ledger.pairs([draft.merchant_order_id], vendor).get((draft.merchant_order_id, vendor))
    if pair is not None and pair.state == "pushed":
        return VendorOrderRef(id=pair.vendor_order_id or "", name=pair.vendor_order_name or ""), "already had"
    if pair is not None and pair.state in ("in_flight", "unknown"):
        found = store.find_order(draft.marker, pair.first_attempt_at)
        if found is not None:
            ledger.mark_pushed(draft.merchant_order_id, vendor, name, found.id, found.name,
                               "found in the vendor store after an interrupted attempt", sync)
            return found, "found (an earlier interrupted attempt had created it)"
    last_error: StoreError | None = None
    for cycle in range(1, CREATE_CYCLES + 1):
        pair = ledger.begin_attempt(draft.merchant_order_id, vendor, name, draft.marker, run_id)
        try:
            ref = store.create_order(draft)
        except TransientError as exc:
            ledger.mark_failed(draft.merchant_order_id, vendor, name, str(exc), exc.maybe_committed)
            last_error = exc
            if not exc.maybe_committed:
                raise
            log.info("create of order %s at vendor %r: outcome unknown (%s); looking it up by its marker %s",
                     name, vendor, exc, draft.marker)
            # Store search is eventually consistent (Shopify's within seconds): give it time before looking.
            env.sleep(max(env.policy.delay(cycle), env.policy.lookup_delay_seconds))
            found = store.find_order(draft.marker, pair.first_attempt_at)
            if found is not None:
                ledger.mark_pushed(draft.merchant_order_id, vendor, name, found.id, found.name,
                                   f"found after: {exc}", sync)
                return found, "found (the interrupted create had succeeded)"
            continue
        except StoreError as exc:
            ledger.mark_failed(draft.merchant_order_id, vendor, name, str(exc), maybe_committed=False)
            raise
        ledger.mark_pushed(draft.merchant_order_id, vendor, name, ref.id, ref.name, "created", sync)
        return ref, "created"
    assert last_error is not None
    raise TransientError(f"{last_error} (no vendor order found by marker after {CREATE_CYCLES} attempts; "
                         "retried on the next run)", maybe_committed=True)


OPERATIONS: dict[Callable[..., None], str] = {_push_one: "create", _update_one: "update", _cancel_one: "cancel"}


# --------------------------------------------------------------------------------------------------------------
def summarise(env: Env, run: RunParams, fetched: dict[str, Any] | None, decided_ok: bool,
              results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals from the ledger, the watermark (moved only once every fetched order was decided), scratch cleared."""
    totals: Counter[str] = Counter()
    failed: list[str] = []
    if run.dry_run:
        for r in results:
            totals.update({k: int(v) for k, v in r.items() if isinstance(v, int) and k not in ("calls", "throttled")})
    else:
        for row in env.ledger.decisions_for_run(run.run_id):
            totals[row["outcome"]] += 1
            if row["outcome"] == "failed":
                failed.append(f"{row['merchant_order_name']} → {row['vendor'] or '(order)'}")
    moved = None
    if (fetched and decided_ok and env.settings.order_sync_enabled and not run.dry_run and not run.order_ids
            and not run.vendors):
        newest = fetched.get("newest_update")
        if newest:
            env.ledger.set_watermark(MERCHANT_WATERMARK, datetime.fromisoformat(newest))
            moved = newest
    env.ledger.clear_run(run.run_id)
    log.info("run %s: %s; watermark %s%s", run.run_id, dict(totals) or "nothing to push",
             f"moved to {moved}" if moved else "unchanged", f"; FAILED: {', '.join(failed)}" if failed else "")
    return {"totals": dict(totals), "failed": failed, "watermark": moved}
