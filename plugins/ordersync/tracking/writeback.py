"""Write-back: one vendor order's shipments become fulfilments of its merchant order, exactly once.

Each vendor shipment has a row in ``ordersync_shipments``, committed ``in_flight`` before the merchant write
and ``written`` after it. A row found ``in_flight`` (an earlier attempt's outcome is unknown) makes the
merchant order's fulfilments be looked up by tracking number before anything is written again.

A shipment with lines (Shopify vendors) becomes a merchant fulfilment of exactly those lines and quantities.
Whole-order tracking items (WooCommerce vendors) have no lines: the first one ships all of that vendor
order's lines still open at the merchant; a later one adds its number to that same merchant fulfilment.

A vendor order cancelled at the vendor, not by ordersync, is reported once and never written back from: the
writer queues one ``vendor_cancelled`` alert, records the share ``cancel_state = vendor_cancelled`` (its
reason saying the merchant tag is still to write), then tags the merchant order ``ordersync-vendor-cancelled``
(``tagsAdd``: a repeat changes nothing) and records that. A tag that fails is retried by the next run from
the ledger, with no second alert (the watermark stays, so the order is read again). The alert is queued in
the same transaction that records the share, so it is raised exactly once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ordersync import alerts
from ordersync.context import Env, RunParams, failure_reason
from ordersync.decisions import DecisionLog
from ordersync.ledger import Ledger, Pair
from ordersync.platforms import StoreError, TransientError
from ordersync.tracking.match import find_fulfillment, match_lines
from ordersync.tracking.model import (
    MerchantFulfillment,
    MerchantFulfillmentState,
    Shipment,
    ShippedOrder,
    Tracking,
    combine,
)

log = logging.getLogger("ordersync")

NO_SHIPMENT = "(none)"
# the outcomes of a tracking decision: written to the merchant, already there, no tracking at the vendor yet,
# could not be written (retried), and a vendor order cancelled at the vendor reported (its merchant order tagged)
KINDS = ("written", "unchanged", "waiting", "failed", "cancelled")

# -- cancelled at the vendor -----------------------------------------------------------------------------------
VENDOR_CANCELLED = "vendor_cancelled"  # the share's cancel_state: the vendor cancelled it, reported once
VENDOR_CANCELLED_TAG = "ordersync-vendor-cancelled"  # the merchant order's tag (operator contract)
OURS = ("cancelled", "refused")  # cancel_state: ordersync cancelled the vendor order, or asked to (refused)
MIRRORED_REFUND = ("in_flight", "recorded")  # ordersync_refunds states: ordersync refunded at the vendor
# the end of the share's ledger reason says whether the merchant tag is written (the next run retries it)
TAG_PENDING = "; merchant order not tagged yet (retried by the next tracking_sync)"
TAGGED = f"; merchant order tagged {VENDOR_CANCELLED_TAG}"
NOT_CANCELLED = "the merchant order is not cancelled, and no tracking is written back from this vendor order"


@dataclass
class OrderSync:
    """One vendor order's shipments written back to its merchant order."""

    env: Env
    run: RunParams
    merchant: Any
    vendor: str
    pair: Pair
    order: ShippedOrder
    decisions: DecisionLog
    notify: bool
    vendor_store: Any = None  # the vendor task's store: a WooCommerce cancellation's note is read from it
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancel: str | None = None  # what the vendor-side cancellation asks for (:meth:`vendor_cancel`)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return self.env.ledger

    def _say(self, key: str, outcome: str, reason: str) -> None:
        self.outcomes[outcome] += 1
        if outcome == "failed":
            self.failures.append(f"{key}: {reason}")
        self.decisions.add_shipment(
            self.pair.merchant_order_id, self.pair.merchant_order_name, self.vendor, key, outcome, reason
        )

    def sync(self) -> None:
        """Every shipment of the vendor order decided: :meth:`triage`, then :meth:`write` what is left."""
        if not self.triage():
            self.write()

    def triage(self) -> bool:
        """Decide, without the merchant store, what needs no merchant call: an unreadable order, one with no
        shipment yet, one whose shipments are all at the merchant already with the same tracking. True when
        that decided every shipment of the order (each logged); False when the merchant is needed (nothing
        logged: the vendor task stages the order for ``write_merchant_fulfillments``).

        A vendor order cancelled at the vendor is never written back from: reported earlier, it is said
        ``unchanged``; newly cancelled (or its merchant tag still to write) it goes to the writer, which has
        the merchant client the tag needs (a dry run says what it would do here)."""
        order = self.order
        try:
            if order.error:
                raise StoreError(order.error)
            self.cancel = self.vendor_cancel()
            if self.cancel == "report" and order.cancel_note is None and self.vendor_store is not None:
                read_note = getattr(self.vendor_store, "cancel_note", None)  # WooCommerce: the order's notes
                if read_note is not None:
                    order = self.order = replace(order, cancel_note=read_note(order.id))
                    if order.cancelled_by_ordersync():  # ordersync's own note: its cancel, not yet recorded
                        self.cancel = None
            if self.cancel is None:
                self.rows = self.ledger.shipments(self.vendor, order.id)
        except Exception as exc:
            self._say(NO_SHIPMENT, "failed", failure_reason(exc))
            return True
        if self.cancel == "reported":
            self._say(
                NO_SHIPMENT,
                "unchanged",
                f"vendor order {order.name} was {self.pair.reason or 'cancelled at the vendor'}; no tracking is "
                f"written back from it{self._held_back()}",
            )
            return True
        if self.cancel is not None:
            if not self.run.dry_run:
                return False
            if self.cancel == "report":
                self._say(
                    NO_SHIPMENT,
                    "cancelled",
                    f"would report: {self._cancelled_words()} (alert vendor_cancelled), and tag merchant order "
                    f"{self.pair.merchant_order_name} {VENDOR_CANCELLED_TAG}; {NOT_CANCELLED}{self._held_back()}",
                )
            else:
                self._say(
                    NO_SHIPMENT,
                    "cancelled",
                    f"would tag merchant order {self.pair.merchant_order_name} {VENDOR_CANCELLED_TAG} (vendor "
                    f"order {order.name} was {self._recorded_reason()}; the earlier tag failed)",
                )
            return True
        if not order.shipments:
            if order.cancelled:
                self._say(
                    NO_SHIPMENT,
                    "unchanged",
                    f"vendor order {order.name} is {order.status or 'cancelled'} at the vendor; "
                    "nothing to write back",
                )
            else:
                self._say(
                    NO_SHIPMENT,
                    "waiting",
                    f"vendor order {order.name} ({order.status or 'open'}) has no shipment with tracking yet",
                )
            return True
        return self._all_written()

    def _all_written(self) -> bool:
        """Every shipment is ``written`` in the ledger with the tracking it has now: each said unchanged."""
        order = self.order

        def same(key: str, fingerprint: str) -> bool:
            row = self.rows.get(key) or {}
            return row.get("state") == "written" and row.get("fingerprint") == fingerprint

        if order.whole_order_tracking:
            tracking = combine([s.tracking for s in order.shipments])
            fingerprint = tracking.fingerprint()
            fids = {(self.rows.get(s.key) or {}).get("merchant_fulfillment_id") for s in order.shipments}
            if len(fids) != 1 or None in fids or not all(same(s.key, fingerprint) for s in order.shipments):
                return False
            fid = fids.pop()
            for s in order.shipments:
                self._say(s.key, "unchanged", f"already on merchant fulfilment {fid} ({tracking.describe()})")
            return True
        if not all(same(s.key, s.tracking.fingerprint()) for s in order.shipments):
            return False
        for s in order.shipments:
            self._say(
                s.key,
                "unchanged",
                f"already written as merchant fulfilment {self.rows[s.key]['merchant_fulfillment_id']} "
                f"({s.tracking.describe()})",
            )
        return True

    def write(self) -> None:
        """The shipments :meth:`triage` left: merchant reads and writes (``write_merchant_fulfillments``)."""
        order = self.order
        if self.cancel in ("report", "tag"):
            self._vendor_cancelled()
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
                    self.ledger.shipment_failed(
                        self.vendor,
                        self.order.id,
                        shipment.key,
                        reason,
                        maybe_written=isinstance(exc, TransientError) and exc.maybe_committed,
                    )
                self._say(shipment.key, "failed", reason)

    # -- cancelled at the vendor -----------------------------------------------------------------------------
    def vendor_cancel(self) -> str | None:
        """What a cancellation at the vendor asks for: ``"report"`` (new: alert, record, tag), ``"tag"``
        (reported and recorded, the merchant tag still to write), ``"reported"`` (done: nothing is ever
        written back from this vendor order, whatever it reads now), or None: not cancelled, or cancelled
        by ordersync (recorded ``cancelled``/``refused``; its orderCancel staff note not recorded yet; a
        WooCommerce order ``refunded`` by the refunds ordersync mirrored)."""
        pair, order = self.pair, self.order
        if pair.cancel_state == VENDOR_CANCELLED:
            return "tag" if (pair.reason or "").endswith(TAG_PENDING) else "reported"
        if not order.cancelled or pair.cancel_state in OURS or order.cancelled_by_ordersync():
            return None
        if order.refunded and any(
            r.state in MIRRORED_REFUND
            for r in self.ledger.refunds.for_share(pair.merchant_order_id, self.vendor)
        ):
            return None
        return "report"

    def _cancellation(self) -> str:
        """``cancelled at the vendor on 2026-11-27 10:00 UTC, not by ordersync (cancelReason INVENTORY, note
        "…")``: the store's reason, and the note the vendor left with it when there is one."""
        order = self.order
        when = f" on {order.cancelled_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if order.cancelled_at else ""
        why = order.cancel_reason or f"status {order.status or 'cancelled'}"
        note = f', note "{order.cancel_note}"' if order.cancel_note else ""
        return f"cancelled at the vendor{when}, not by ordersync ({why}{note})"

    def _cancelled_words(self) -> str:
        return f"vendor order {self.order.name} was {self._cancellation()}"

    def _recorded_reason(self) -> str:
        """The share's ledger reason without its tag state: ``cancelled at the vendor on …; reported …``."""
        return (self.pair.reason or "cancelled at the vendor").removesuffix(TAG_PENDING).removesuffix(TAGGED)

    def _held_back(self) -> str:
        shipments = self.order.shipments
        if not shipments:
            return ""
        described = ", ".join(s.tracking.describe() for s in shipments)
        return f"; not written back: {len(shipments)} shipment(s), {described}"

    def _vendor_cancelled(self) -> None:
        """Report (once), record, tag — in that order; each step's effect is in the ledger before the next, so
        a failure or a crash is taken up by the next run at the step that did not happen."""
        pair, order, name = self.pair, self.order, self.pair.merchant_order_name
        if self.cancel == "report":
            words = self._cancelled_words()
            alert = alerts.Alert(
                "vendor_cancelled",
                name,
                self.vendor,
                "tracking",
                f"vendor order {order.name} ({order.id}) was {self._cancellation()}; the merchant "
                f"order gets the tag {VENDOR_CANCELLED_TAG}; {NOT_CANCELLED}",
                alerts.SUGGESTIONS["vendor_cancelled"],
            )
            alerts.log_alert(alert)
            recorded = f"{self._cancellation()}; reported (alert vendor_cancelled)"
            # the alert and the record that it was raised in one transaction: never lost, never raised twice
            self.ledger.update_pushed(
                pair.merchant_order_id,
                self.vendor,
                with_alerts=(self.run.run_id, alerts.rows([alert])),
                cancel_state=VENDOR_CANCELLED,
                cancelled_at=order.cancelled_at or datetime.now(UTC),
                reason=recorded + TAG_PENDING,
            )
            said = f"{words}: reported (alert vendor_cancelled)"
        else:
            recorded = self._recorded_reason()
            said = f"vendor order {order.name} was {recorded} in an earlier run, not again"
        try:
            self.merchant.add_tags(pair.merchant_order_id, [VENDOR_CANCELLED_TAG])
        except Exception as exc:
            self._say(
                NO_SHIPMENT,
                "failed",
                f"{said}; tagging merchant order {name} {VENDOR_CANCELLED_TAG} failed: {failure_reason(exc)} "
                "(retried on the next run, with no second alert)",
            )
            return
        self.ledger.update_pushed(pair.merchant_order_id, self.vendor, reason=recorded + TAGGED)
        again = " (the earlier attempt had failed)" if self.cancel == "tag" else ""
        self._say(
            NO_SHIPMENT,
            "cancelled",
            f"{said}; merchant order tagged {VENDOR_CANCELLED_TAG}{again}; {NOT_CANCELLED}{self._held_back()}",
        )

    # -- helpers ----------------------------------------------------------------------------------------------
    def _state(self) -> MerchantFulfillmentState:
        return self.merchant.fulfillment_state(self.pair.merchant_order_id)

    def _written(self, key: str, fulfillment_id: str, tracking: Tracking) -> None:
        self.ledger.shipment_written(
            self.vendor,
            self.order.id,
            key,
            self.pair.merchant_order_id,
            self.pair.merchant_order_name,
            fulfillment_id,
            tracking.fingerprint(),
            json.dumps(
                {"company": tracking.company, "numbers": list(tracking.numbers), "urls": list(tracking.urls)}
            ),
        )

    def _begin(self, key: str, tracking: Tracking, fulfillment_id: str | None = None) -> None:
        self.ledger.begin_shipment(
            self.vendor,
            self.order.id,
            key,
            self.pair.merchant_order_id,
            self.pair.merchant_order_name,
            self.run.run_id,
            fulfillment_id,
            json.dumps({"numbers": list(tracking.numbers)}),
        )

    def _notified(self) -> str:
        return "buyer notified" if self.notify else "buyer not notified (notify_customer_on_tracking=false)"

    def _recover(self, keys: list[str], tracking: Tracking) -> MerchantFulfillment | None:
        """An earlier attempt's outcome is unknown: the merchant fulfilment it may have made, by tracking number."""
        if not any((self.rows.get(k) or {}).get("state") == "in_flight" for k in keys):
            return None
        state = self._state()
        return find_fulfillment(
            state.fulfillments,
            tracking,
            self.ledger.merchant_fulfillments_recorded(self.pair.merchant_order_id),
        )

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
            log.info(
                "fulfillmentCreate for %s (vendor %r): outcome unknown (%s); looking it up by tracking number",
                self.pair.merchant_order_name,
                self.vendor,
                exc,
            )
            found = find_fulfillment(
                self._state().fulfillments,
                tracking,
                self.ledger.merchant_fulfillments_recorded(self.pair.merchant_order_id),
            )
            if found is None:
                raise TransientError(
                    f"{exc} (no merchant fulfilment with {tracking.describe()} found; looked up "
                    "again before the next attempt)",
                    maybe_committed=True,
                ) from None
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
                self._say(
                    key, "unchanged", f"already written as merchant fulfilment {fid} ({tracking.describe()})"
                )
                return
            old = _described(row.get("tracking"))
            if not dry:
                self._update(key, fid, tracking)
            self._say(
                key,
                "written",
                f"{'would update' if dry else 'updated'} the tracking of merchant fulfilment {fid}: "
                f"{old} → {tracking.describe()} (fulfillmentTrackingInfoUpdate, no new fulfilment; "
                f"{self._notified()})",
            )
            return
        if not dry:
            found = self._recover([key], tracking)
            if found is not None:
                self._written(key, found.id, tracking)
                self._say(
                    key,
                    "written",
                    f"merchant fulfilment {found.id} ({tracking.describe()}) was made by an interrupted "
                    "earlier attempt; recorded, not written again",
                )
                return
        plan = match_lines(self.vendor, shipment.lines or (), self._state().fulfillment_orders)
        if plan.empty:
            raise StoreError(
                f"no open line of merchant order {self.pair.merchant_order_name} for vendor "
                f"{self.vendor!r} matches the shipped {_lines(shipment.lines or ())} (fulfilled at the "
                "merchant already, or the SKUs differ)"
            )
        note = f"; NOT placed (no open merchant line left): {_lines(plan.unplaced)}" if plan.unplaced else ""
        if dry:
            self._say(
                key,
                "written",
                f"would create a merchant fulfilment of {plan.describe()} with {tracking.describe()}{note}",
            )
            return
        fid, how = self._create([key], plan.groups, tracking)
        self._say(
            key,
            "written",
            f"{how} merchant fulfilment {fid}: {plan.describe()} with "
            f"{tracking.describe()}; {self._notified()}{note}",
        )

    def _update(self, key: str, fid: str, tracking: Tracking) -> None:
        self.merchant.update_tracking(fid, tracking, self.notify)  # idempotent: sets the whole tracking
        self._written(key, fid, tracking)

    # -- whole-order tracking (WooCommerce vendors): tracking items, no line items -------------------------
    def _whole_order_tracking(self) -> None:
        order, dry = self.order, self.run.dry_run
        items = list(order.shipments)
        keys = [s.key for s in items]
        tracking = combine([s.tracking for s in items])
        fid = next(
            (
                r["merchant_fulfillment_id"]
                for r in self.rows.values()
                if r["state"] == "written" and r["merchant_fulfillment_id"]
            ),
            None,
        )
        if fid is None and not dry:
            found = self._recover(keys, tracking)
            if found is not None and set(found.tracking.numbers) == set(tracking.numbers):
                for s in items:
                    self._written(s.key, found.id, tracking)
                    self._say(
                        s.key,
                        "written",
                        f"merchant fulfilment {found.id} ({tracking.describe()}) was made by an "
                        "interrupted earlier attempt; recorded, not written again",
                    )
                return
            fid = found.id if found is not None else None  # found with other numbers: updated below
        if fid is None:
            plan = match_lines(self.vendor, order.lines, self._state().fulfillment_orders)
            if plan.empty:
                raise StoreError(
                    f"no open line of merchant order {self.pair.merchant_order_name} for vendor "
                    f"{self.vendor!r} is left to ship for WooCommerce order {order.name} "
                    f"({_lines(order.lines)}): fulfilled at the merchant already, or the SKUs differ"
                )
            what = (
                f"merchant fulfilment of {plan.describe()} (a WooCommerce tracking item ships all of the vendor "
                f"order's still-unshipped lines) with {tracking.describe()}"
            )
            if dry:
                for i, s in enumerate(items):
                    self._say(
                        s.key,
                        "written",
                        f"would create a {what}"
                        if i == 0
                        else "would go on the same merchant fulfilment as the first tracking item",
                    )
                return
            fid, how = self._create([s.key for s in items], plan.groups, tracking)
            for i, s in enumerate(items):
                self._say(
                    s.key,
                    "written",
                    f"{how} {what}; {self._notified()}"
                    if i == 0
                    else f"on merchant fulfilment {fid} with the first tracking item ({how} in one write)",
                )
            return
        fingerprint = tracking.fingerprint()
        new = [s for s in items if (self.rows.get(s.key) or {}).get("state") != "written"]
        stale = [s for s in items if s not in new and self.rows[s.key]["fingerprint"] != fingerprint]
        if not new and not stale:
            for s in items:
                self._say(s.key, "unchanged", f"already on merchant fulfilment {fid} ({tracking.describe()})")
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
                self._say(
                    s.key,
                    "written",
                    f"the vendor's lines had shipped already: {verb} merchant fulfilment {fid} to carry "
                    f"every tracking number, {tracking.describe()} (fulfillmentTrackingInfoUpdate; "
                    f"{self._notified()})",
                )
            elif not new and i == 0:
                self._say(
                    s.key,
                    "written",
                    f"tracking items changed at the vendor: {verb} merchant fulfilment {fid} to "
                    f"{tracking.describe()} (fulfillmentTrackingInfoUpdate; {self._notified()})",
                )
            else:
                self._say(s.key, "unchanged", f"already on merchant fulfilment {fid}")


def _lines(lines: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{qty} × {sku or '(no SKU)'}" for sku, qty in lines) or "no lines"


def _described(raw: str | None) -> str:
    if not raw:
        return "(unknown)"
    data = json.loads(raw)
    return Tracking(company=data.get("company"), numbers=tuple(data.get("numbers") or ())).describe()
