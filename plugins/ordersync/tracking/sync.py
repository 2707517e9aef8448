"""tracking_sync, step by step, as plain Python the DAG's tasks call.

validate -> sync_vendor (one call per vendor) -> summarise.

Per vendor: read the vendor orders changed since that vendor's watermark (``tracking:<vendor>``), or the
vendor orders of the named merchant orders; keep those ordersync pushed (ledger ``ordersync_vendor_orders``);
write each new shipment back to the merchant order as a fulfilment of exactly that vendor's lines and
quantities, with its tracking; a changed tracking number updates the existing merchant fulfilment.

Exactly once: each vendor shipment has a row in ``ordersync_shipments``, committed ``in_flight`` before the
merchant write and ``written`` after it. A row found ``in_flight`` (an earlier attempt's outcome is unknown)
makes the merchant order's fulfilments be looked up by tracking number before anything is written again.

WooCommerce tracking items have no line items: the first one ships all of that vendor order's lines still
open at the merchant; a later one (the lines have shipped) adds its number to that same merchant fulfilment.
A partial shipment cannot be expressed in WooCommerce.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ordersync import alerts
from ordersync.ledger import Ledger, Pair
from ordersync.platforms import StoreError, TransientError, open_merchant, open_vendor
from ordersync.tracking.match import find_fulfillment, match_lines
from ordersync.tracking.model import (MerchantFulfillment, MerchantFulfillmentState, ShippedOrder, Shipment, Tracking,
                                      combine)
from ordersync.sync import Env, RunParams, failure_reason
from ordersync.sync import validate as validate_sync

log = logging.getLogger("ordersync")

NO_SHIPMENT = "(none)"


def watermark_name(vendor: str) -> str:
    return f"tracking:{vendor}"


def tracking_line(order_name: str, vendor: str, key: str, outcome: str, reason: str, dry_run: bool = False) -> str:
    prefix = "[dry run] " if dry_run else ""
    return f"{prefix}tracking order {order_name} → vendor {vendor!r} shipment {key}: {outcome} — {reason}"


class TrackingDecisions:
    """One line per (order, vendor, shipment); ledger decision rows (none in a dry run); alerts for failures."""

    def __init__(self, ledger: Ledger, run: RunParams, vendor: str) -> None:
        self.ledger = ledger
        self.run = run
        self.vendor = vendor
        self.counts: Counter[str] = Counter()
        self.failed: list[str] = []
        self.rows: list[dict[str, str]] = []

    def add(self, pair: Pair, key: str, outcome: str, reason: str) -> None:
        line = tracking_line(pair.merchant_order_name, self.vendor, key, outcome, reason, self.run.dry_run)
        (log.warning if outcome == "failed" else log.info)(line)
        self.counts[outcome] += 1
        if outcome == "failed":
            if pair.merchant_order_name not in self.failed:
                self.failed.append(pair.merchant_order_name)
        if not self.run.dry_run:
            self.rows.append({"merchant_order_id": pair.merchant_order_id,
                              "merchant_order_name": pair.merchant_order_name, "vendor": self.vendor,
                              "outcome": outcome, "reason": f"tracking shipment {key}: {reason}",
                              "operation": "tracking", "subject": key})

    def flush(self) -> None:
        if self.rows:
            self.ledger.record_decisions(self.run.run_id, self.rows)
            self.rows = []


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
    log.info("tracking_sync: %d vendor(s) to read: %s", len(work), ", ".join(w["vendor"] for w in work) or "none")
    return work


# --------------------------------------------------------------------------------------------------------------
def _select(pushed: dict[str, Pair], refs: Iterable[str]) -> tuple[dict[str, Pair], list[str]]:
    """Pairs of the merchant orders named by GID, numeric id or name; and the refs that matched none."""
    chosen: dict[str, Pair] = {}
    missing = []
    for ref in refs:
        ref = ref.strip()
        hits = {vid: p for vid, p in pushed.items()
                if ref in (p.merchant_order_id, p.merchant_order_name, f"#{ref}")
                or p.merchant_order_id.rsplit("/", 1)[-1] == ref}
        if not hits:
            missing.append(ref)
        chosen.update(hits)
    return chosen, missing


def sync_vendor(env: Env, run: RunParams, vendor: str) -> dict[str, Any]:
    """One vendor: every changed (or named) vendor order ordersync pushed, each shipment decided and logged."""
    config = env.vendors[vendor]
    decisions = TrackingDecisions(env.ledger, run, vendor)
    notify = env.settings.notify_customer_on_tracking
    store = open_vendor(config.platform, env.connections[config.conn_id], vendor, env.policy)
    merchant = open_merchant(env.merchant, env.policy)
    newest: datetime | None = None
    read = ours = 0
    try:
        pushed = env.ledger.pushed_for_vendor(vendor)
        if run.order_ids:
            pushed, missing = _select(pushed, run.order_ids)
            for ref in missing:
                log.info("order %s: no vendor order at %r pushed by ordersync; no tracking to read", ref, vendor)
            source = store.shipped_orders(order_ids=list(pushed), only=set(pushed)) if pushed else iter(())
            log.info("manual run: re-reading %d vendor order(s) at %r", len(pushed), vendor)
        else:
            since = env.ledger.watermark(watermark_name(vendor))
            log.info("reading vendor %r orders updated since %s", vendor, since.isoformat() if since else "the beginning")
            source = store.shipped_orders(since=since, only=set(pushed))
        for order in source:
            read += 1
            if not run.order_ids and order.updated_at is not None:
                newest = max(newest, order.updated_at) if newest else order.updated_at
            pair = pushed.get(order.id)
            if pair is None:
                continue                     # not an order ordersync pushed
            ours += 1
            OrderSync(env, run, merchant, vendor, pair, order, decisions, notify).sync()
        decisions.flush()
    except StoreError as exc:          # the vendor store could not be read: nothing decided for this vendor
        decisions.flush()
        log.error("vendor %r: cannot read its orders' tracking: %s (its watermark stays; retried on the next run)",
                  vendor, exc)
        alerts.queue(env.ledger, run.run_id, [alerts.Alert(
            kind="failed", order="(every changed order)", vendor=vendor, operation="tracking read",
            message=f"cannot read the vendor's orders: {exc}",
            suggestion=alerts.suggest("read", str(exc), vendor, config.conn_id))], run.dry_run)
        raise
    finally:
        store.close()
        merchant.close()
    kinds = ("written", "unchanged", "waiting", "failed")
    result = {"vendor": vendor, **{k: decisions.counts.get(k, 0) for k in kinds},
              "failed_orders": decisions.failed, "read": read, "pushed_orders": ours,
              "newest": newest.isoformat() if newest else None,
              "calls": store.calls + merchant.calls}
    log.info("vendor %s tracking: %s", vendor, {k: v for k, v in result.items() if k != "failed_orders"})
    return result


@dataclass
class OrderSync:
    """One vendor order's shipments written back to its merchant order."""
    env: Env
    run: RunParams
    merchant: Any
    vendor: str
    pair: Pair
    order: ShippedOrder
    decisions: TrackingDecisions
    notify: bool
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ledger(self) -> Ledger:
        return self.env.ledger

    def sync(self) -> None:
        order = self.order
        try:
            if order.error:
                raise StoreError(order.error)
            self.rows = self.ledger.shipments(self.vendor, order.id)
        except Exception as exc:
            self.decisions.add(self.pair, NO_SHIPMENT, "failed", failure_reason(exc))
            return
        if not order.shipments:
            if order.cancelled:
                self.decisions.add(self.pair, NO_SHIPMENT, "unchanged",
                                   f"vendor order {order.name} is {order.status or 'cancelled'} at the vendor; "
                                   "nothing to write back")
            else:
                self.decisions.add(self.pair, NO_SHIPMENT, "waiting",
                                   f"vendor order {order.name} ({order.status or 'open'}) has no shipment with "
                                   "tracking yet")
            return
        if order.whole_order_tracking:
            self._guard(order.shipments, self._whole_order_tracking)
        else:
            for shipment in order.shipments:
                self._guard([shipment], self._shipment_with_lines, shipment)

    def _guard(self, shipments: Iterable[Shipment], step: Any, *args: Any) -> None:
        try:
            step(*args)
        except Exception as exc:
            reason = failure_reason(exc)
            for shipment in shipments:
                if not self.run.dry_run:
                    self.ledger.shipment_failed(self.vendor, self.order.id, shipment.key, reason,
                                                maybe_written=isinstance(exc, TransientError) and exc.maybe_committed)
                self.decisions.add(self.pair, shipment.key, "failed", reason)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _state(self) -> MerchantFulfillmentState:
        return self.merchant.fulfillment_state(self.pair.merchant_order_id)

    def _written(self, key: str, fulfillment_id: str, tracking: Tracking) -> None:
        self.ledger.shipment_written(self.vendor, self.order.id, key, self.pair.merchant_order_id,
                                     self.pair.merchant_order_name, fulfillment_id, tracking.fingerprint(),
                                     json.dumps({"company": tracking.company, "numbers": list(tracking.numbers),
                                                 "urls": list(tracking.urls)}))

    def _begin(self, key: str, tracking: Tracking, fulfillment_id: str | None = None) -> None:
        self.ledger.begin_shipment(self.vendor, self.order.id, key, self.pair.merchant_order_id,
                                   self.pair.merchant_order_name, self.run.run_id, fulfillment_id,
                                   json.dumps({"numbers": list(tracking.numbers)}))

    def _notified(self) -> str:
        return "buyer notified" if self.notify else "buyer not notified (notify_customer_on_tracking=false)"

    def _recover(self, keys: list[str], tracking: Tracking) -> MerchantFulfillment | None:
        """An earlier attempt's outcome is unknown: the merchant fulfilment it may have made, by tracking number."""
        if not any((self.rows.get(k) or {}).get("state") == "in_flight" for k in keys):
            return None
        state = self._state()
        return find_fulfillment(state.fulfillments, tracking,
                                self.ledger.merchant_fulfillments_recorded(self.pair.merchant_order_id))

    def _create(self, keys: list[str], groups: list[dict[str, Any]], tracking: Tracking) -> tuple[str, str]:
        """fulfillmentCreate, bracketed by the ledger; a dropped answer is resolved by looking the fulfilment up."""
        for key in keys:
            self._begin(key, tracking)
        try:
            fid = self.merchant.create_fulfillment(groups, tracking, self.notify)
            how = "created"
        except TransientError as exc:
            if not exc.maybe_committed:
                raise
            log.info("fulfillmentCreate for %s (vendor %r): outcome unknown (%s); looking it up by tracking number",
                     self.pair.merchant_order_name, self.vendor, exc)
            found = find_fulfillment(self._state().fulfillments, tracking,
                                     self.ledger.merchant_fulfillments_recorded(self.pair.merchant_order_id))
            if found is None:
                raise TransientError(f"{exc} (no merchant fulfilment with {tracking.describe()} found; looked up "
                                     "again before the next attempt)", maybe_committed=True) from None
            fid, how = found.id, "found (the interrupted fulfillmentCreate had succeeded)"
        for key in keys:
            self._written(key, fid, tracking)
        return fid, how

    # -- shipments with lines (Shopify vendors): one vendor fulfilment = one merchant fulfilment of them --
    def _shipment_with_lines(self, shipment: Shipment) -> None:
        key, tracking, dry = shipment.key, shipment.tracking, self.run.dry_run
        row = self.rows.get(key)
        if row and row["state"] == "written":
            fid = row["merchant_fulfillment_id"]
            if row["fingerprint"] == tracking.fingerprint():
                self.decisions.add(self.pair, key, "unchanged",
                                   f"already written as merchant fulfilment {fid} ({tracking.describe()})")
                return
            old = _described(row.get("tracking"))
            if not dry:
                self._update(key, fid, tracking)
            self.decisions.add(self.pair, key, "written",
                               f"{'would update' if dry else 'updated'} the tracking of merchant fulfilment {fid}: "
                               f"{old} → {tracking.describe()} (fulfillmentTrackingInfoUpdate, no new fulfilment; "
                               f"{self._notified()})")
            return
        if not dry:
            found = self._recover([key], tracking)
            if found is not None:
                self._written(key, found.id, tracking)
                self.decisions.add(self.pair, key, "written",
                                   f"merchant fulfilment {found.id} ({tracking.describe()}) was made by an interrupted "
                                   "earlier attempt; recorded, not written again")
                return
        plan = match_lines(self.vendor, shipment.lines or (), self._state().fulfillment_orders)
        if plan.empty:
            raise StoreError(f"no open line of merchant order {self.pair.merchant_order_name} for vendor "
                             f"{self.vendor!r} matches the shipped {_lines(shipment.lines or ())} (fulfilled at the "
                             "merchant already, or the SKUs differ)")
        note = f"; NOT placed (no open merchant line left): {_lines(plan.unplaced)}" if plan.unplaced else ""
        if dry:
            self.decisions.add(self.pair, key, "written", f"would create a merchant fulfilment of {plan.describe()} "
                                                          f"with {tracking.describe()}{note}")
            return
        fid, how = self._create([key], plan.groups, tracking)
        self.decisions.add(self.pair, key, "written", f"{how} merchant fulfilment {fid}: {plan.describe()} with "
                                                      f"{tracking.describe()}; {self._notified()}{note}")

    def _update(self, key: str, fid: str, tracking: Tracking) -> None:
        self.merchant.update_tracking(fid, tracking, self.notify)     # idempotent: sets the whole tracking
        self._written(key, fid, tracking)

    # -- whole-order tracking (WooCommerce vendors): tracking items, no line items -------------------------
    def _whole_order_tracking(self) -> None:
        order, dry = self.order, self.run.dry_run
        items = list(order.shipments)
        keys = [s.key for s in items]
        tracking = combine([s.tracking for s in items])
        fid = next((r["merchant_fulfillment_id"] for r in self.rows.values()
                    if r["state"] == "written" and r["merchant_fulfillment_id"]), None)
        if fid is None and not dry:
            found = self._recover(keys, tracking)
            if found is not None and set(found.tracking.numbers) == set(tracking.numbers):
                for s in items:
                    self._written(s.key, found.id, tracking)
                    self.decisions.add(self.pair, s.key, "written",
                                       f"merchant fulfilment {found.id} ({tracking.describe()}) was made by an "
                                       "interrupted earlier attempt; recorded, not written again")
                return
            fid = found.id if found is not None else None     # found with other numbers: updated below
        if fid is None:
            plan = match_lines(self.vendor, order.lines, self._state().fulfillment_orders)
            if plan.empty:
                raise StoreError(f"no open line of merchant order {self.pair.merchant_order_name} for vendor "
                                 f"{self.vendor!r} is left to ship for WooCommerce order {order.name} "
                                 f"({_lines(order.lines)}): fulfilled at the merchant already, or the SKUs differ")
            what = (f"merchant fulfilment of {plan.describe()} (a WooCommerce tracking item ships all of the vendor "
                    f"order's still-unshipped lines) with {tracking.describe()}")
            if dry:
                for i, s in enumerate(items):
                    self.decisions.add(self.pair, s.key, "written", f"would create a {what}" if i == 0
                                       else "would go on the same merchant fulfilment as the first tracking item")
                return
            fid, how = self._create([s.key for s in items], plan.groups, tracking)
            for i, s in enumerate(items):
                self.decisions.add(self.pair, s.key, "written", f"{how} {what}; {self._notified()}" if i == 0 else
                                   f"on merchant fulfilment {fid} with the first tracking item ({how} in one write)")
            return
        fingerprint = tracking.fingerprint()
        new = [s for s in items if (self.rows.get(s.key) or {}).get("state") != "written"]
        stale = [s for s in items if s not in new and self.rows[s.key]["fingerprint"] != fingerprint]
        if not new and not stale:
            for s in items:
                self.decisions.add(self.pair, s.key, "unchanged",
                                   f"already on merchant fulfilment {fid} ({tracking.describe()})")
            return
        verb = "would update" if dry else "updated"
        if not dry:
            for s in new:
                self._begin(s.key, s.tracking, fid)
            self.merchant.update_tracking(fid, tracking, self.notify)
            for s in items:
                self._written(s.key, fid, tracking)
        for i, s in enumerate(items):
            if s in new:
                self.decisions.add(self.pair, s.key, "written",
                                   f"the vendor's lines had shipped already: {verb} merchant fulfilment {fid} to carry "
                                   f"every tracking number, {tracking.describe()} (fulfillmentTrackingInfoUpdate; "
                                   f"{self._notified()})")
            elif not new and i == 0:
                self.decisions.add(self.pair, s.key, "written",
                                   f"tracking items changed at the vendor: {verb} merchant fulfilment {fid} to "
                                   f"{tracking.describe()} (fulfillmentTrackingInfoUpdate; {self._notified()})")
            else:
                self.decisions.add(self.pair, s.key, "unchanged", f"already on merchant fulfilment {fid}")


def _lines(lines: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{qty} × {sku or '(no SKU)'}" for sku, qty in lines) or "no lines"


def _described(raw: str | None) -> str:
    if not raw:
        return "(unknown)"
    data = json.loads(raw)
    return Tracking(company=data.get("company"), numbers=tuple(data.get("numbers") or ())).describe()


# --------------------------------------------------------------------------------------------------------------
def summarise(env: Env, run: RunParams, results: list[dict[str, Any]], vendors: list[str]) -> dict[str, Any]:
    """Totals; each vendor's watermark moves only when its task decided every order (it returned a result with no
    failure), never in a dry run or a manual selection of orders."""
    totals: Counter[str] = Counter()
    failed: list[str] = []
    moved: dict[str, str] = {}
    done = {r["vendor"]: r for r in results}
    for r in results:
        totals.update({k: int(r.get(k, 0)) for k in ("written", "unchanged", "waiting", "failed")})
        failed += [f"{o} → {r['vendor']}" for o in r.get("failed_orders") or []]
        if run.dry_run or run.order_ids or r.get("failed") or not r.get("newest"):
            continue
        env.ledger.set_watermark(watermark_name(r["vendor"]), datetime.fromisoformat(r["newest"]))
        moved[r["vendor"]] = r["newest"]
    undecided = [v for v in vendors if v not in done]
    log.info("tracking run %s: %s; watermark %s%s", run.run_id, dict(totals) or "nothing to write back",
             ", ".join(f"{v} → {t}" for v, t in moved.items()) or "unchanged",
             f"; not decided (task failed): {', '.join(undecided)}" if undecided else "")
    return {"totals": dict(totals), "failed": failed, "watermarks": moved, "undecided": undecided}
