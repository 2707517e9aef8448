"""push_vendor_orders: one vendor's share of the run (one mapped task per vendor).

New vendor orders are created exactly once, then edits and cancellations go to the ones the vendor already
has. Orders go to the store concurrently, up to the platform's ``concurrency()`` at a time (Shopify's client
also paces them by its cost bucket); each (order, vendor) pair is handled by exactly one thread.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ordersync import alerts, lifecycle, rules
from ordersync.context import Env, RunParams, failure_reason
from ordersync.decisions import DecisionLog
from ordersync.ledger import Pair
from ordersync.models import LineItem, Mapping, MerchantOrder, Refund, VendorRefund
from ordersync.orders import refunds as refund_parts
from ordersync.orders.decide import WORK_KINDS, line_change
from ordersync.orders.exactly_once import push_exactly_once
from ordersync.orders.fanout import Fanout
from ordersync.orders.fetch import STAGE_CHUNK
from ordersync.orders.split import build_draft, split_by_vendor, unrefunded
from ordersync.platforms import capabilities, open_vendor, registry
from ordersync.platforms.base import PermanentError, StoreError

# the note tracking_sync knows ordersync's own cancellations by
from ordersync.tracking.model import ORDERSYNC_CANCEL_NOTE

log = logging.getLogger("ordersync")

PUSH_CHUNK = STAGE_CHUNK
KINDS = ("pushed", "updated", "cancelled", "refunded", "manual", "unchanged", "held", "skipped", "failed")


def push_vendor(env: Env, run: RunParams, vendor: str, work: dict[str, Any]) -> dict[str, Any]:
    """This vendor's share of the run. A failure of the vendor as a whole (its store cannot be opened, the
    ledger is unreachable) is queued for the run's alert, naming every order it left undone."""
    try:
        push = VendorPush(env, run, vendor)
        try:
            return push.execute(work)
        finally:
            try:
                env.ledger.flush_pushed()  # creates that succeeded before a failure stay recorded
            finally:
                push.store.close()
    except Exception as exc:
        undone = sum(len(work.get(kind, [])) for kind in WORK_KINDS)
        reason = failure_reason(exc)
        log.error(
            "vendor %r: the push stopped: %s; %d order(s) left for the next run", vendor, reason, undone
        )
        try:
            config = env.vendors.get(vendor)
            alerts.queue(
                env.ledger,
                run.run_id,
                [
                    alerts.Alert(
                        "failed",
                        f"({undone} order(s))",
                        vendor,
                        "push",
                        reason,
                        alerts.suggest("create", reason, vendor, config.conn_id if config else ""),
                    )
                ],
                run.dry_run,
            )
        except Exception as again:  # the ledger itself is down: the summary reports the failed task
            log.error("could not queue the alert either: %s", failure_reason(again))
        raise


def sku_cache_age() -> timedelta:
    """How long a SKU's mapping is trusted before the vendor catalog is asked again
    (``ORDERSYNC_SKU_CACHE_HOURS``, default 24): an archived product or a new live duplicate is noticed within
    that time, at one catalog lookup per SKU and vendor a day."""
    try:
        hours = float(os.environ.get("ORDERSYNC_SKU_CACHE_HOURS", "24"))
    except ValueError:
        hours = 24.0
    return timedelta(hours=max(0.0, hours))


class VendorPush:
    """One vendor's store, configuration, decision log and alerts for this run; a method per kind of work."""

    def __init__(self, env: Env, run: RunParams, vendor: str) -> None:
        self.env, self.run, self.vendor = env, run, vendor
        self.config = env.vendors[vendor]
        self.settings = env.settings_for(vendor)  # the global settings with this vendor's own laid over them
        self.platform = registry.get(self.config.platform)
        self.store = open_vendor(
            self.config.platform, env.connections[self.config.conn_id], vendor, env.policy
        )
        self.decisions = DecisionLog(env.ledger, run)
        self.raised: list[alerts.Alert] = []
        self.known: dict[tuple[str, str], Pair] | None = None  # the pairs of the chunk being created

    @property
    def ledger(self):
        return self.env.ledger

    def say(self, order: MerchantOrder, outcome: str, reason: str, operation: str = "") -> None:
        self.decisions.add(order.id, order.name, self.vendor, outcome, reason, operation)

    # -- the task ------------------------------------------------------------------------------------------------
    def execute(self, work: dict[str, Any]) -> dict[str, Any]:
        workers = 1 if self.run.dry_run else self.platform.concurrency()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push") as pool:
            fanout = Fanout(pool)
            creates = list(work.get("create", []))
            for start in range(0, len(creates), PUSH_CHUNK):
                orders = self.ledger.staged_orders(self.run.run_id, creates[start : start + PUSH_CHUNK])
                self.known = self.ledger.pairs([o.id for o in orders], self.vendor)
                shares = {o.id: split_by_vendor(o).get(self.vendor, []) for o in orders}
                mappings, mapping_error = self.mappings(
                    [line.sku for ls in shares.values() for line in ls if line.sku]
                )
                fanout.run(
                    [
                        self._guarded(
                            order,
                            "create",
                            partial(self.create, order, shares[order.id], mappings, mapping_error),
                        )
                        for order in orders
                    ]
                )
            cancels = set(work.get("cancel", []))
            edits = [*work.get("update", []), *cancels]
            for start in range(0, len(edits), PUSH_CHUNK):
                changed = self.ledger.staged_orders(self.run.run_id, edits[start : start + PUSH_CHUNK])
                pairs = self.ledger.pairs([o.id for o in changed], self.vendor)
                fanout.run(
                    [
                        self._guarded(
                            order,
                            *(("cancel", self.cancel) if order.id in cancels else ("update", self.update)),
                            order,
                            split_by_vendor(unrefunded(order)).get(self.vendor, []),  # as pushed
                            pairs[(order.id, self.vendor)],
                        )
                        for order in changed
                    ]
                )
            refunds = list(work.get("refund", []))  # after the edits: one pass per kind, one thread per pair
            for start in range(0, len(refunds), PUSH_CHUNK):
                refunded = self.ledger.staged_orders(self.run.run_id, refunds[start : start + PUSH_CHUNK])
                pairs = self.ledger.pairs([o.id for o in refunded], self.vendor)
                fanout.run(
                    [
                        self._guarded(order, "refund", self.refund, order, pairs[(order.id, self.vendor)])
                        for order in refunded
                    ]
                )
        self.ledger.flush_pushed()
        self.decisions.flush()
        alerts.queue(self.ledger, self.run.run_id, self.raised, self.run.dry_run)
        result = {
            "vendor": self.vendor,
            **{k: self.decisions.counts.get(k, 0) for k in KINDS},
            "failed_orders": self.decisions.failed,
            "calls": self.store.calls,
            "throttled": self.store.throttled,
        }
        log.info("vendor %s: %s", self.vendor, {k: v for k, v in result.items() if k != "failed_orders"})
        return result

    def _guarded(
        self, order: MerchantOrder, operation: str, step: Callable[..., Any], *args: Any
    ) -> Callable[[], bool]:
        """The step as the fanout runs it: whatever it raises becomes that order's ``failed`` line (with the
        operation the run's alert names) and the batch goes on. True when the store answered cleanly (the
        step raised nothing and did not return False)."""

        def guarded() -> bool:
            try:
                return step(*args) is not False
            except Exception as exc:
                self.say(order, "failed", failure_reason(exc), operation)
                return False

        return guarded

    # -- SKU mappings ----------------------------------------------------------------------------------------------
    def mappings(self, skus: list[str]) -> tuple[dict[str, Mapping], str | None]:
        """Cached mappings, refreshed from the vendor catalog for SKUs the cache lacks."""
        wanted = list(dict.fromkeys(skus))
        found = self.ledger.cached_mappings(self.vendor, wanted, max_age=sku_cache_age())
        missing = [s for s in wanted if s not in found]
        if not missing:
            return found, None
        try:
            fresh = self.store.resolve_skus(missing)
        except StoreError as exc:
            return found, f"cannot read the vendor catalog to map SKUs: {exc}"
        if fresh and not self.run.dry_run:
            self.ledger.store_mappings(self.vendor, fresh.values())
        log.info(
            "vendor %s: %d SKU(s) looked up in the vendor catalog, %d found",
            self.vendor,
            len(missing),
            len(fresh),
        )
        return {**found, **fresh}, None

    def _hold(self, order: MerchantOrder, verdict: rules.RuleDecision, skus: list[str]) -> None:
        """Say and record a share held before its create, with the SKUs it waits on."""
        self.say(order, verdict.outcome, verdict.reason)
        if not self.run.dry_run:
            self.ledger.mark_not_pushed(
                order.id,
                self.vendor,
                order.name,
                verdict.outcome,
                verdict.reason,
                verdict.hold_kind,
                self.run.run_id,
                unmapped_skus=skus,
            )

    # -- create ------------------------------------------------------------------------------------------------------
    def create(
        self,
        order: MerchantOrder,
        lines: list[LineItem],
        mappings: dict[str, Mapping],
        mapping_error: str | None,
    ) -> bool | None:
        env, run, vendor = self.env, self.run, self.vendor
        if not lines:
            self.say(order, "skipped", "no line items for this vendor any more")
            return None
        unmapped = [line for line in lines if not line.sku or line.sku not in mappings]
        if unmapped and mapping_error:
            raise StoreError(mapping_error)
        ambiguous = {
            line.sku: mappings[line.sku].ambiguous
            for line in lines
            if line.sku and line.sku in mappings and mappings[line.sku].ambiguous
        }
        if ambiguous:  # two live products share the SKU: a guess ships the wrong item, so nothing goes
            verdict = rules.block(
                "unique_sku",
                "held",
                "; ".join(
                    f"SKU {sku} matches {len(matches)} live products at the vendor: "
                    f"{', '.join(matches[:-1])} and {matches[-1]}"
                    for sku, matches in ambiguous.items()
                )
                + "; make the SKU unique there",
                "ambiguous",
            )
            if not run.dry_run:
                # never cached: the next run looks the SKU up again, and goes once the vendor fixed it
                self.ledger.forget_mappings(vendor, ambiguous)
            self._hold(order, verdict, list(ambiguous))
            return None
        verdict = rules.unmapped_products(self.settings, lines, mappings)
        if not verdict.allow:
            self._hold(order, verdict, [line.sku or "(no SKU)" for line in unmapped])
            return None
        draft = build_draft(order, self.config, lines, mappings, self.settings, self.platform.locations)
        summary = f"{len(lines)} line(s), {sum(line.quantity for line in lines)} item(s); {verdict.reason}"
        if self.settings.vendor_keys():  # the values this vendor's own settings decided
            summary += f"; {self.settings.vendor_note()}"
        if run.dry_run:
            self.say(order, "pushed", f"would create the vendor order: {summary}")
            return None
        # the lines as if nothing had been refunded: a refund after the push is then no line edit
        pushed_from = split_by_vendor(unrefunded(order)).get(vendor, lines) if order.refunds else lines
        sync = lifecycle.sync_record(self.config.platform, order, self.settings, pushed_from)
        known = (self.known or {}).get((order.id, vendor))
        earlier = known.first_attempt_at if known is not None else None
        # before the create: the refunds its vendor order leaves out (a crash after it loses nothing); with an
        # earlier attempt, which may have created the vendor order from an older read, only those made before it
        note = self._refunded_before_push(order, before=earlier)
        try:
            ref, how = push_exactly_once(env, self.store, draft, run.run_id, sync, self.known)
        except PermanentError as exc:
            stale = [line.sku for line in lines if line.sku and line.sku in mappings]
            if not (stale and self.platform.stale_mapping.search(str(exc))):
                raise
            self.ledger.forget_mappings(
                vendor, stale
            )  # e.g. the vendor deleted the product since it was cached
            raise PermanentError(
                f"{exc} — the vendor store no longer has the product this order's SKU mapping "
                f"points at; the mapping of {', '.join(stale)} is dropped and looked up again on "
                "the next run",
                status=exc.status,
                code=exc.code,
            ) from None
        if earlier is not None and not how.startswith("found"):  # this attempt created it: from this read
            note = self._refunded_before_push(order)
        if draft.location_id and hasattr(self.store, "assign_location"):
            try:
                note += "; " + self.store.assign_location(ref.id, draft.location_id)
            except StoreError as exc:
                note += f"; WARNING location not set: {exc}"
                log.warning(
                    "vendor order for %s at %r was created, but its location was not set: %s",
                    order.name,
                    vendor,
                    exc,
                )
        self.say(order, "pushed", f"{how} vendor order {ref.name} ({ref.id}): {summary}{note}")
        return not how.startswith("found")  # found by its marker: an earlier answer was lost

    def _refunded_before_push(self, order: MerchantOrder, before: datetime | None = None) -> str:
        """Refunds the order has as this create reads it (made before ``before``, when given): the refunded
        units are not pushed, so nothing of them is mirrored later (recorded ``before_push``, said in the pushed
        line)."""
        mode = self.settings.vendor_shipping
        limit = before if before is None or before.tzinfo else before.replace(tzinfo=UTC)
        earlier = [
            r
            for r in order.refunds
            if refund_parts.touches(order, r, self.vendor, mode) and (limit is None or r.created_at < limit)
        ]
        for refund in earlier:
            part = refund_parts.vendor_refund(order, refund, self.vendor, mode, "")
            self.ledger.refunds.settle(
                order.id,
                self.vendor,
                refund.id,
                order.name,
                "before_push",
                f"refunded before the push, not sent: {refund_parts.describe(part)}",
                self.run.run_id,
            )
        if not earlier:
            return ""
        return f"; created without what refund(s) {', '.join(r.number for r in earlier)} gave back"

    # -- refunds -------------------------------------------------------------------------------------------------
    def refund(self, order: MerchantOrder, pair: Pair) -> bool:
        """Each refund touching this vendor, not yet at the vendor, recorded there once (bracketed in the
        ledger); then a share refunded whole and not shipped is cancelled at the vendor."""
        vendor, mode = self.vendor, self.settings.vendor_shipping
        target = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
        rows = self.ledger.refunds.rows([order.id], vendor)
        can = capabilities(self.config.platform).get("refunds")
        failed: Exception | None = None
        for refund in order.refunds:
            if not refund_parts.touches(order, refund, vendor, mode):
                continue
            row = rows.get((order.id, vendor, refund.id))
            if row is not None and row.settled:
                continue
            part = refund_parts.vendor_refund(order, refund, vendor, mode, "")
            what = refund_parts.describe(part)
            if not can or not hasattr(self.store, "record_refund"):
                reason = (
                    f"refund {refund.number} ({what}) cannot be recorded on {target}: the "
                    f"{self.platform.label} platform takes no refunds; record it there by hand"
                )
                if not self.run.dry_run:
                    self.ledger.refunds.settle(
                        order.id, vendor, refund.id, order.name, "manual", what, self.run.run_id
                    )
                    self.raised.append(
                        alerts.Alert(
                            "manual", order.name, vendor, "refund", reason, alerts.SUGGESTIONS["manual"]
                        )
                    )
                self.say(order, "manual", reason)
                continue
            if self.run.dry_run:
                self.say(order, "refunded", f"would record refund {refund.number} on {target}: {what}")
                continue
            try:
                self._record_refund(order, pair, refund, part, what, target)
            except Exception as exc:  # the other refunds, and the cancel of a share refunded whole, still go
                if failed is not None:
                    self.say(order, "failed", failure_reason(failed), "refund")
                failed = exc
        if refund_parts.fully_refunded(order, vendor) and pair.cancel_state is None:
            self.cancel(order, [], pair, why="refunded whole at the marketplace")
        if failed is not None:
            raise failed  # said by the step's guard: the run's alert names it
        return True

    def _record_refund(
        self, order: MerchantOrder, pair: Pair, refund: Refund, part: VendorRefund, what: str, target: str
    ) -> None:
        """One refund's part, bracketed: ``in_flight`` before the vendor is asked, ``recorded`` after; an error
        that may have reached the vendor leaves it ``in_flight`` (looked up by its marker first next time)."""
        vendor = self.vendor
        begun = self.ledger.refunds.begin(order.id, vendor, refund.id, order.name, what, self.run.run_id)
        part = part.model_copy(update={"key": begun.key_for(pair.vendor_order_id or "")})
        try:
            recorded = self.store.record_refund(pair.vendor_order_id or "", part)
        except PermanentError as exc:
            self.ledger.refunds.finish(begun, "failed", last_error=str(exc))
            raise
        except StoreError as exc:
            # the answer may be lost: the row stays in_flight, looked up at the vendor first next time
            self.ledger.refunds.finish(begun, "in_flight", last_error=str(exc))
            raise
        self.ledger.refunds.finish(begun, "recorded", vendor_refund_id=recorded.id, last_error=None)
        how = "found (an earlier attempt had recorded it)" if recorded.found else "recorded"
        line = (
            f"refund {refund.number} {how} on {target} as {recorded.id}: {what}; no money moved at the vendor"
        )
        if recorded.shipped_units:
            line += (
                f"; the vendor had already shipped {recorded.shipped_units} of the refunded unit(s): "
                "recorded for its books, and reported"
            )
            self.raised.append(
                alerts.Alert(
                    "manual",
                    order.name,
                    vendor,
                    "refund",
                    f"refund {refund.number} covers {recorded.shipped_units} unit(s) {vendor} already shipped "
                    f"({target}): arrange the return with the vendor",
                    alerts.SUGGESTIONS["manual"],
                )
            )
        self.say(order, "refunded", line)

    # -- order-level edits -----------------------------------------------------------------------------------------
    def update(self, order: MerchantOrder, lines: list[LineItem], pair: Pair) -> None:
        """Forward order-level edits (the fields the platform accepts on an existing order)."""
        env, vendor = self.env, self.vendor
        fields = lifecycle.synced_fields(self.config.platform, lifecycle.order_fields(order, self.settings))
        changed = lifecycle.changed_fields(pair.synced_fields, fields) or ["(retrying the last failed edit)"]
        manual = line_change(env, self.run, order, vendor, lines, pair, self.raised)
        note = f"; {manual}" if manual else ""
        target = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
        if self.run.dry_run:
            self.say(order, "updated", f"would update {target}: {', '.join(changed)}{note}")
            return
        try:
            self.store.update_order(pair.vendor_order_id or "", fields, order.name)
        except StoreError as exc:
            self.ledger.update_pushed(order.id, vendor, last_error=str(exc))
            raise
        self.ledger.update_pushed(
            order.id,
            vendor,
            fingerprint=lifecycle.fingerprint_of(fields),
            synced_fields=json.dumps(fields, sort_keys=True, default=str),
            last_error=None,
            reason=f"updated: {', '.join(changed)}",
        )
        self.say(order, "updated", f"{target}: {', '.join(changed)}{note}")

    # -- cancellation ------------------------------------------------------------------------------------------------
    def cancel(self, order: MerchantOrder, lines: list[LineItem], pair: Pair, why: str = "") -> None:
        """Cancel the vendor order (the merchant cancelled it, or ``why``: it was refunded whole); one that
        cannot be cancelled any more is reported once, not retried."""
        vendor, vendor_order_id = self.vendor, pair.vendor_order_id or ""
        target = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
        reason = lifecycle.cancel_reason(order)
        because = f" ({why})" if why else ""
        if self.run.dry_run:
            self.say(order, "cancelled", f"would cancel {target}{because} (reason {reason})")
            return
        try:
            state = self.store.order_state(vendor_order_id)
            refused = None
            if state.cancelled:
                how = "was already cancelled at the vendor"
            elif state.fulfilled:
                refused = f"cannot cancel {target}{because}: it is {state.status} at the vendor"
            else:
                try:
                    self.store.cancel_order(
                        vendor_order_id,
                        reason,
                        f"{ORDERSYNC_CANCEL_NOTE} {order.name}" + (f", {why}" if why else ""),
                    )
                    how = (
                        f"cancelled (reason {reason}, restocked, buyer not notified, no refund at the vendor)"
                    )
                except PermanentError as exc:
                    refused = f"cannot cancel {target}{because}: {exc}"
        except StoreError as exc:
            self.ledger.update_pushed(order.id, vendor, last_error=str(exc))
            raise
        if refused:
            self.ledger.update_pushed(
                order.id, vendor, cancel_state="refused", last_error=None, reason=refused
            )
            self.raised.append(
                alerts.Alert(
                    "cancel_refused",
                    order.name,
                    vendor,
                    "cancel",
                    refused,
                    alerts.SUGGESTIONS["cancel_refused"],
                )
            )
            self.say(order, "manual", refused + " — reported, not retried")
            if order.cancelled_at is not None and order.refunds and self.settings.sync_refunds:
                # shipped before the merchant cancelled it: the cancellation's refunds are still recorded there
                self.refund(order, replace(pair, cancel_state="refused"))
            return
        self.ledger.update_pushed(
            order.id,
            vendor,
            cancel_state="cancelled",
            cancelled_at=order.cancelled_at or datetime.now(UTC),
            last_error=None,
            reason=how,
        )
        self.say(order, "cancelled", f"{target}{because} {how}")
