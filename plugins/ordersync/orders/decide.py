"""decide: the order-level rules, the split per vendor, and what changed on orders already at a vendor.
Returns each vendor's work (order ids to create, update, cancel) for its mapped push task."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ordersync import alerts, lifecycle, rules
from ordersync.context import Env, RunParams
from ordersync.decisions import DecisionLog
from ordersync.models import MerchantOrder
from ordersync.orders import refunds as refund_parts
from ordersync.orders.fetch import STAGE_CHUNK, sync_horizon
from ordersync.orders.split import split_by_vendor, unrefunded

log = logging.getLogger("ordersync")

WORK_KINDS = ("create", "update", "cancel", "refund")
# holds whose orders every scheduled run re-reads (Ledger.open_order_ids): the delay runs out, the risk drops,
# without any change to the order
REREAD_HOLDS = ("delay", "risk")
UNREADABLE = "(unreadable)"


@dataclass(frozen=True)
class RefundView:
    """The refund rows of a chunk's orders, by (order, vendor, merchant refund), and when refund sync began."""

    rows: dict[tuple[str, str, str], Any]
    since: datetime | None  # the refund row that says an order's refunds could not be read (said once)


def decide(env: Env, run: RunParams) -> list[dict[str, Any]]:
    """Apply the order-level rules and split; returns each vendor's work: order ids to create, update, cancel."""
    ids = env.ledger.staged_order_ids(run.run_id)
    decisions = DecisionLog(env.ledger, run)
    work: dict[str, dict[str, list[str]]] = defaultdict(lambda: {kind: [] for kind in WORK_KINDS})
    raised: list[alerts.Alert] = []
    horizon = sync_horizon(env, run)
    since = env.ledger.refunds.synced_since()
    for start in range(0, len(ids), STAGE_CHUNK):  # a chunk at a time: memory stays flat with the backlog
        chunk = ids[start : start + STAGE_CHUNK]
        position = {order_id: n for n, order_id in enumerate(chunk)}
        orders = sorted(env.ledger.staged_orders(run.run_id, chunk), key=lambda o: position[o.id])
        pairs = env.ledger.pairs(chunk)
        refunded = [o.id for o in orders if o.refunds or o.refunds_unreadable]
        refund_rows = RefundView(env.ledger.refunds.rows(refunded) if refunded else {}, since)
        for order in orders:
            try:
                _decide_order(env, run, order, pairs, refund_rows, decisions, work, raised, horizon)
            except Exception as exc:  # a bug on one order never stops the batch
                decisions.add(
                    order.id,
                    order.name,
                    "",
                    "failed",
                    f"could not decide: {type(exc).__name__}: {exc}",
                    "decide",
                )
                if not run.dry_run:
                    env.ledger.mark_failed(order.id, "", order.name, str(exc), maybe_committed=False)
    decisions.flush()
    alerts.queue(env.ledger, run.run_id, raised, run.dry_run)
    if decisions.quiet:
        log.info(
            "%d (order, vendor) share(s) not pushed for a reason reported once already: %s",
            sum(decisions.quiet.values()),
            dict(decisions.quiet),
        )
    log.info(
        "decided %d order(s): %s; vendor work: %s",
        len(ids),
        dict(decisions.counts) or "no decisions yet",
        {v: {k: len(ids) for k, ids in w.items() if ids} for v, w in work.items()} or "none",
    )
    return [
        {"vendor": vendor, "orders": sum(len(ids) for ids in w.values()), **w}
        for vendor, w in sorted(work.items())
    ]


def _decide_order(
    env: Env,
    run: RunParams,
    order: MerchantOrder,
    pairs: dict,
    refund_rows: RefundView,
    decisions: DecisionLog,
    work: dict[str, dict[str, list[str]]],
    raised: list[alerts.Alert],
    horizon: datetime | None,
) -> None:
    now = datetime.now(UTC)
    history = rules.sync_horizon(env.settings, order, horizon, named=bool(run.order_ids))
    shares = split_by_vendor(order)
    pushed_from = (
        split_by_vendor(unrefunded(order)) if order.refunds else shares
    )  # what a pair was pushed from
    pushed_vendors = [v for (oid, v), p in pairs.items() if oid == order.id and p.state == "pushed"]
    if not shares and not pushed_vendors:
        decisions.add(order.id, order.name, "", "skipped", "order has no line items left to push")
    if (order.id, "") in pairs and not run.dry_run:
        env.ledger.mark_not_pushed(order.id, "", order.name, "skipped", "order is readable again")
    for vendor in dict.fromkeys([*shares, *pushed_vendors]):
        if run.vendors and vendor not in run.vendors:
            continue  # this run was asked for other vendors only
        pair = pairs.get((order.id, vendor))
        if pair is not None and pair.state == "pushed":
            _decide_pushed(
                env,
                run,
                order,
                vendor,
                pushed_from.get(vendor, []),
                pair,
                refund_rows,
                decisions,
                work,
                raised,
            )
            continue
        if pair is None or pair.state not in (
            "in_flight",
            "unknown",
        ):  # those may be at the vendor: look first
            never = rules.first_block(
                [
                    rules.merchant_fulfilled(order, shares.get(vendor, [])),
                    history if pair is None or pair.state == "skipped" else rules.allow("", ""),
                ]
            )
            if never is not None:
                if (
                    pair is not None
                    and pair.state == "skipped"
                    and pair.hold_kind == never.hold_kind
                    and not run.order_ids
                ):  # a manual run naming the order is always answered
                    decisions.quiet[never.rule] += 1  # said once, when it was first decided
                    continue
                decisions.add(order.id, order.name, vendor, never.outcome, never.reason)
                if not run.dry_run and vendor:
                    env.ledger.mark_not_pushed(
                        order.id, vendor, order.name, never.outcome, never.reason, never.hold_kind, run.run_id
                    )
                continue
        verdict = rules.vendor_eligible(env.settings, vendor, env.vendors)
        if verdict.allow:  # the order-level rules, with the settings that apply to this vendor
            order_block = rules.first_block(
                rules.order_rules(env.settings_for(vendor), order, now, named=bool(run.order_ids))
            )
            verdict = order_block or verdict
        if not verdict.allow:
            if (
                verdict.hold_kind in REREAD_HOLDS
                and pair is not None
                and pair.state == "held"
                and pair.hold_kind == verdict.hold_kind
                and pair.reason == verdict.reason
                and not run.order_ids
            ):  # re-read every run until it can go: said once, not on every run
                decisions.quiet[verdict.rule] += 1
                continue
            decisions.add(order.id, order.name, vendor, verdict.outcome, verdict.reason)
            if not run.dry_run and vendor:
                env.ledger.mark_not_pushed(
                    order.id,
                    vendor,
                    order.name,
                    verdict.outcome,
                    verdict.reason,
                    verdict.hold_kind,
                    run.run_id,
                )
            continue
        if not run.dry_run and (pair is None or pair.state in ("held", "skipped")):
            env.ledger.mark_not_pushed(
                order.id, vendor, order.name, "queued", "queued for push", None, run.run_id
            )
        work[vendor]["create"].append(order.id)


def _decide_pushed(
    env: Env,
    run: RunParams,
    order: MerchantOrder,
    vendor: str,
    lines: list,
    pair: Any,
    refund_rows: RefundView,
    decisions: DecisionLog,
    work: dict[str, dict[str, list[str]]],
    raised: list[alerts.Alert],
) -> None:
    """An order already at the vendor: cancel it, update it, mirror its refunds, flag its line items, or leave
    it. ``lines`` are the vendor's lines as if nothing had been refunded (refunds are mirrored, not flagged)."""
    pushed_as = f"vendor order {pair.vendor_order_name} ({pair.vendor_order_id})"
    config = env.vendors.get(vendor)
    if config is None or not config.enabled or config.platform not in env.settings.order_push_platforms:
        decisions.add(
            order.id,
            order.name,
            vendor,
            "skipped",
            f"already pushed as {pushed_as}; vendor no longer active, changes are not forwarded",
        )
        return
    if not env.settings.order_sync_enabled:
        decisions.add(
            order.id,
            order.name,
            vendor,
            "skipped",
            f"order sync is switched off (order_sync_enabled=false): changes to {pushed_as} wait",
        )
        return
    if pair.cancel_state == "vendor_cancelled" or (pair.cancel_state and order.cancelled_at is None):
        said = {
            "vendor_cancelled": "was cancelled by the vendor (reported)",
            "cancelled": "was cancelled when it was refunded whole",
        }.get(pair.cancel_state, "could not be cancelled when it was refunded whole (reported)")
        decisions.add(
            order.id, order.name, vendor, "unchanged", f"{pushed_as} {said}: changes are not forwarded"
        )
        return
    if order.cancelled_at is not None:
        if pair.cancel_state == "cancelled":
            decisions.add(order.id, order.name, vendor, "unchanged", f"{pushed_as} is already cancelled")
        elif pair.cancel_state == "refused":  # shipped before it could be cancelled: its refunds still go
            refunding, told = _refunds_due(env, run, order, vendor, pair, refund_rows, decisions, raised)
            if refunding:
                work[vendor]["refund"].append(order.id)
            elif not told:
                decisions.add(
                    order.id,
                    order.name,
                    vendor,
                    "unchanged",
                    f"{pushed_as} could not be cancelled earlier and was reported: {pair.last_error or ''}",
                )
        else:
            work[vendor]["cancel"].append(order.id)
        return
    manual = line_change(env, run, order, vendor, lines, pair, raised)
    refunding, skipped = _refunds_due(env, run, order, vendor, pair, refund_rows, decisions, raised)
    if refunding:
        work[vendor]["refund"].append(order.id)  # the push task says each refund
    fields = lifecycle.synced_fields(config.platform, lifecycle.order_fields(order, env.settings))
    if lifecycle.fingerprint_of(fields) != pair.fingerprint or pair.last_error:
        work[vendor]["update"].append(order.id)  # the push task logs the line (and mentions the flag)
    elif refunding or skipped:
        if manual:
            decisions.add(order.id, order.name, vendor, "manual", manual)
    elif manual:
        decisions.add(order.id, order.name, vendor, "manual", manual)
    else:
        decisions.add(
            order.id, order.name, vendor, "unchanged", f"already pushed as {pushed_as}; nothing changed"
        )


def _refunds_due(
    env: Env,
    run: RunParams,
    order: MerchantOrder,
    vendor: str,
    pair: Any,
    refund_rows: RefundView,
    decisions: DecisionLog,
    raised: list[alerts.Alert],
) -> tuple[bool, bool]:
    """Whether the push task has refund work on this pair: a refund touching the vendor not settled in the
    ledger, or a share refunded whole whose vendor order is still open (it is cancelled). With
    ``sync_refunds`` off for the vendor, each new refund is said ``skipped`` once and recorded so. Returns
    (work, said): said when a line was added here."""
    if pair.cancel_state not in (None, "refused"):  # cancelled: nothing more is recorded there
        return False, False
    settings = env.settings_for(vendor)
    if order.refunds_unreadable and settings.sync_refunds:
        if (order.id, vendor, UNREADABLE) in refund_rows.rows:
            return False, False  # said and alerted once
        reason = (
            f"the order's refunds could not be read ({order.refunds_unreadable}); record them on vendor order "
            f"{pair.vendor_order_name} by hand (its line items are not compared either: a refund cannot be told "
            "from an edit)"
        )
        decisions.add(order.id, order.name, vendor, "manual", reason)
        if not run.dry_run:
            env.ledger.refunds.settle(order.id, vendor, UNREADABLE, order.name, "manual", reason, run.run_id)
            raised.append(
                alerts.Alert("manual", order.name, vendor, "refund", reason, alerts.SUGGESTIONS["manual"])
            )
        return False, True
    if not order.refunds:
        return False, False
    due = [
        refund
        for refund in order.refunds
        if refund_parts.touches(order, refund, vendor, settings.vendor_shipping)
        and not ((row := refund_rows.rows.get((order.id, vendor, refund.id))) is not None and row.settled)
    ]
    older = {r.id: _older_than_sync(env, run, order, vendor, pair, r, refund_rows, decisions) for r in due}
    said_older = "manual" in older.values()
    due = [r for r in due if older[r.id] is None]
    if settings.sync_refunds:
        whole = pair.cancel_state is None and refund_parts.fully_refunded(order, vendor)  # to cancel there
        return bool(due) or whole, said_older
    for refund in due:
        reason = (
            f"refund {refund.number} is not mirrored on vendor order {pair.vendor_order_name} "
            f"({settings.said('sync_refunds')})"
        )
        decisions.add(order.id, order.name, vendor, "skipped", reason)
        if not run.dry_run:
            part = refund_parts.vendor_refund(order, refund, vendor, settings.vendor_shipping, "")
            env.ledger.refunds.settle(
                order.id, vendor, refund.id, order.name, "skipped", refund_parts.describe(part), run.run_id
            )
    return False, bool(due) or said_older


def _older_than_sync(
    env: Env,
    run: RunParams,
    order: MerchantOrder,
    vendor: str,
    pair: Any,
    refund: Any,
    refund_rows: RefundView,
    decisions: DecisionLog,
) -> str | None:
    """On a pair pushed before the upgrade to refund sync, a refund the ledger has no row of: settled now, never
    sent. Made before the push's first attempt, the vendor order was created without it (``before_push``). Made
    after the push but before ``refunds_synced_since``: the version before flagged it for a human, who may have
    recorded it by hand (``manual``, said once). Returns the state it was settled in, or None. (Pairs pushed
    since: the create records, before it writes, the refunds its vendor order leaves out.)"""
    if (order.id, vendor, refund.id) in refund_rows.rows or pair.first_attempt_at is None:
        return None
    pushed = (
        pair.first_attempt_at if pair.first_attempt_at.tzinfo else pair.first_attempt_at.replace(tzinfo=UTC)
    )
    created = refund.created_at if refund.created_at.tzinfo else refund.created_at.replace(tzinfo=UTC)
    since = refund_rows.since
    if since is None or pushed >= since:  # pushed with refund sync: the create settled what it left out
        return None
    if created < pushed:
        state, reason = "before_push", "refunded before the push: the vendor order was created without it"
    elif created < since:
        state = "manual"
        reason = (
            f"refund {refund.number} was made before refunds were mirrored (refunds_synced_since "
            f"{since:%Y-%m-%d %H:%M} UTC): not sent; record it on vendor order {pair.vendor_order_name} by hand "
            "if that was not done"
        )
        decisions.add(order.id, order.name, vendor, "manual", reason)
    else:
        return None
    if not run.dry_run:
        env.ledger.refunds.settle(order.id, vendor, refund.id, order.name, state, reason, run.run_id)
    return state


def line_change(
    env: Env,
    run: RunParams,
    order: MerchantOrder,
    vendor: str,
    lines: list,
    pair: Any,
    raised: list[alerts.Alert],
) -> str | None:
    """Line items differ from what was pushed: flag for a human (alerted once per change), never synced. An
    order whose refunds could not be read cannot tell a refund from an edit: its refund notice says it."""
    if order.refunds_unreadable:
        return None
    current = lifecycle.line_fingerprint(lines)
    # a pair pushed before shipping was part of the fingerprint matches its lines-only one: no false alarm
    if pair.line_fingerprint is None or lifecycle.lines_unchanged(pair.line_fingerprint, lines):
        return None
    what = (
        f"line items changed after the push ({lifecycle.describe_lines(lines)}); not synced — change vendor "
        f"order {pair.vendor_order_name} by hand"
    )
    if current == pair.manual_fingerprint:
        return what + " (flagged and alerted earlier)"
    if not run.dry_run:
        env.ledger.update_pushed(order.id, vendor, manual_fingerprint=current)
        raised.append(
            alerts.Alert("manual", order.name, vendor, "line_items", what, alerts.SUGGESTIONS["manual"])
        )
    return what + " (flagged; in this run's alert)"
