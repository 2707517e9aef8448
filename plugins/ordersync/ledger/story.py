"""Every order's story, read from the ledger: what the Order Sync page and its JSON API show.

Plain SQLAlchemy Core over the ledger's tables, no Airflow: :class:`Story` answers

* :meth:`Story.order` — one merchant order (by name, numeric id or GID): each vendor share with its state, reason,
  vendor order, attempts, last error, shipments and decisions (newest first, each with its run);
* :meth:`Story.shares` — shares filtered by state, vendor and a name search, newest first;
* :meth:`Story.overview` — counts per state and vendor, the last 24 hours per hour, held shares by reason,
  unmapped SKUs per vendor with the orders waiting on each, the latest failures with the alert's suggested fix.

Each read is on an index (migration 0007): the order page's reads stay under 100 ms at a million vendor-order
rows (``scripts/page_benchmark.py``). Nothing here writes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from ordersync.ledger.schema import (
    alerts_table,
    decisions,
    merchant_orders,
    refunds,
    shipments,
    vendor_orders,
)
from ordersync.models import OrderRef

# the states a share can be in, as the contract lists them (``queued`` is an internal step before ``in_flight``)
STATES = ("pushed", "held", "skipped", "failed", "unknown", "in_flight", "cancelled", "manual")
DECISIONS_PER_SHARE = 100  # the newest decisions an order page shows per share (a re-read adds one)
LATEST_FAILURES = 20
GID_PREFIX = "gid://shopify/Order/"


def share_state(state: str, cancel_state: str | None) -> str:
    """The state the page shows: a cancelled vendor order reads ``cancelled``; ``queued`` is ``in_flight``."""
    if cancel_state in ("cancelled", "vendor_cancelled"):  # by ordersync, or by the vendor (the reason says)
        return "cancelled"
    if state == "queued":
        return "in_flight"
    return state


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def split_run(key: str | None) -> tuple[str | None, str | None]:
    """The ledger keys runs as ``dag_id/run_id`` (run ids repeat across DAGs): (dag_id, Airflow's run id)."""
    if not key:
        return None, None
    dag_id, sep, run_id = key.partition("/")
    return (dag_id, run_id) if sep else (None, key)


@dataclass(frozen=True)
class Found:
    """A merchant order the ledger knows: its GID and name."""

    id: str
    name: str


class Story:
    """``conn_ids``: vendor -> its connection id, named in the suggested fix of a failure no alert described."""

    def __init__(self, engine: Engine, conn_ids: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.conn_ids = dict(conn_ids or {})

    def _fix(self, share: Any, recorded: str | None) -> str | None:
        """The alert's suggested fix for a failed or unknown share; else the one the run's alert would carry."""
        if recorded or share.state not in ("failed", "unknown"):
            return recorded
        from ordersync.alerts import suggest

        error = share.last_error or share.reason or ""
        return suggest(
            "create", error, share.vendor, self.conn_ids.get(share.vendor, ""), share.merchant_order_name
        )

    # -- one order ----------------------------------------------------------------------------------------------

    def find(self, ref: str) -> Found | None:
        """The merchant order ``ref`` names (``#1001``, ``1001`` — a numeric id, else the name ``#1001`` —, or a
        GID), if ordersync ever decided a share of it."""
        parsed = OrderRef.parse(ref or "")
        if parsed is None:
            return None
        by_id = select(vendor_orders.c.merchant_order_id, vendor_orders.c.merchant_order_name)
        with self.engine.connect() as conn:
            if parsed.number is not None:
                hit = conn.execute(
                    by_id.where(vendor_orders.c.merchant_order_id == GID_PREFIX + parsed.number).limit(1)
                ).first()
                if hit is None:
                    hit = conn.execute(
                        by_id.where(vendor_orders.c.merchant_order_name == f"#{parsed.number}").limit(1)
                    ).first()
            else:
                hit = conn.execute(
                    by_id.where(vendor_orders.c.merchant_order_name == parsed.name).limit(1)
                ).first()
        return Found(hit.merchant_order_id, hit.merchant_order_name) if hit else None

    def order(self, ref: str) -> dict[str, Any] | None:
        """The contract's ``GET /ordersync/api/v1/orders/{ref}`` answer (without links: the web layer adds them),
        or None for an order ordersync never saw. The buyer's contact is included: the caller masks it."""
        found = self.find(ref)
        if found is None:
            return None
        with self.engine.connect() as conn:
            pairs = conn.execute(
                select(vendor_orders)
                .where(vendor_orders.c.merchant_order_id == found.id)
                .order_by(vendor_orders.c.vendor)
            ).all()
            ships = conn.execute(
                select(shipments)
                .where(shipments.c.merchant_order_id == found.id)
                .order_by(shipments.c.first_attempt_at)
            ).all()
            refunded = conn.execute(
                select(refunds).where(refunds.c.merchant_order_id == found.id).order_by(refunds.c.id)
            ).all()
            said = conn.execute(
                select(decisions)
                .where(decisions.c.merchant_order_id == found.id)
                .order_by(decisions.c.id.desc())
                .limit(DECISIONS_PER_SHARE * max(1, len(pairs)))
            ).all()
            merchant = conn.execute(
                select(merchant_orders).where(merchant_orders.c.merchant_order_id == found.id)
            ).first()
            fixes = self._suggestions(
                conn, [(found.name, p.vendor) for p in pairs if p.state in ("failed", "unknown")]
            )
        by_vendor: dict[str, list[dict[str, Any]]] = defaultdict(list)
        order_level: list[dict[str, Any]] = []
        for d in said:
            dag_id, run_id = split_run(d.run_id)
            entry = {
                "dag_id": dag_id,
                "run_id": run_id,
                "at": _iso(d.created_at),
                "outcome": d.outcome,
                "reason": d.reason,
                "operation": d.operation,
            }
            (by_vendor[d.vendor] if d.vendor else order_level).append(entry)
        ship_by_vendor: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in ships:
            tracking = json.loads(s.tracking) if s.tracking else {}
            ship_by_vendor[s.vendor].append(
                {
                    "vendor_order_id": s.vendor_order_id,
                    "vendor_shipment": s.vendor_shipment_key,
                    "state": s.state,
                    "merchant_fulfillment_id": s.merchant_fulfillment_id,
                    "company": tracking.get("company"),
                    "numbers": list(tracking.get("numbers") or ()),
                    "urls": list(tracking.get("urls") or ()),
                    "written_at": _iso(s.written_at),
                    "error": s.error,
                    "dag_id": split_run(s.run_id)[0],
                    "run_id": split_run(s.run_id)[1],
                }
            )
        refunds_by_vendor: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in refunded:
            dag_id, run_id = split_run(r.run_id or "")
            refunds_by_vendor[r.vendor].append(
                {
                    "merchant_refund_id": r.merchant_refund_id,
                    "state": r.state,
                    "vendor_refund_id": r.vendor_refund_id,
                    "detail": r.detail,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "at": _iso(r.updated_at),
                    "dag_id": dag_id,
                    "run_id": run_id,
                }
            )
        shares = []
        for p in pairs:
            if not p.vendor:  # an order-level row (the order could not be read): its decisions go below
                continue
            shares.append(
                {
                    **self._share(p),
                    "suggestion": self._fix(p, fixes.get((found.name, p.vendor))),
                    "shipments": ship_by_vendor.get(p.vendor, []),
                    "refunds": refunds_by_vendor.get(p.vendor, []),
                    "decisions": by_vendor.get(p.vendor, [])[:DECISIONS_PER_SHARE],
                }
            )
        return {
            "merchant_order": {
                "id": found.id,
                "name": found.name,
                "legacy_id": found.id.rsplit("/", 1)[-1],
                "financial_status": merchant.financial_status if merchant else None,
                "fulfillment_status": merchant.fulfillment_status if merchant else None,
                "created_at": _iso(merchant.created_at) if merchant else None,
                "last_read_at": _iso(merchant.seen_at) if merchant else None,
                "buyer": {
                    "name": merchant.buyer_name if merchant else None,
                    "email": merchant.buyer_email if merchant else None,
                    "phone": merchant.buyer_phone if merchant else None,
                },
            },
            "shares": shares,
            "decisions": order_level[:DECISIONS_PER_SHARE],
        }

    @staticmethod
    def _share(p: Any) -> dict[str, Any]:
        return {
            "merchant_order_id": p.merchant_order_id,
            "merchant_order_name": p.merchant_order_name,
            "vendor": p.vendor,
            "state": share_state(p.state, p.cancel_state),
            "hold_kind": p.hold_kind,
            "reason": p.reason,
            "vendor_order_id": p.vendor_order_id,
            "vendor_order_name": p.vendor_order_name,
            "attempts": p.attempts,
            "last_error": p.last_error,
            "last_attempt_at": _iso(p.last_attempt_at),
            "pushed_at": _iso(p.pushed_at),
            "cancelled_at": _iso(p.cancelled_at),
            "updated_at": _iso(p.updated_at),
            "dag_id": split_run(p.run_id)[0],
            "run_id": split_run(p.run_id)[1],
            "unmapped_skus": json.loads(p.unmapped_skus) if p.unmapped_skus else [],
        }

    @staticmethod
    def _suggestions(conn: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The newest alert's suggested fix for each (order name, vendor)."""
        if not keys:
            return {}
        rows = conn.execute(
            select(alerts_table.c.merchant_order_name, alerts_table.c.vendor, alerts_table.c.suggestion)
            .where(
                or_(
                    *(
                        and_(alerts_table.c.merchant_order_name == n, alerts_table.c.vendor == v)
                        for n, v in keys
                    )
                )
            )
            .order_by(alerts_table.c.id)
        ).all()
        return {(r.merchant_order_name, r.vendor): r.suggestion for r in rows}  # the newest wins

    # -- lists --------------------------------------------------------------------------------------------------

    def shares(
        self, state: str | None = None, vendor: str | None = None, q: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Shares, newest change first; ``state`` as the page shows it, ``q`` a name prefix (``#10`` or ``10``)."""
        query = select(vendor_orders).where(vendor_orders.c.vendor != "")
        if state == "cancelled":
            query = query.where(vendor_orders.c.cancel_state == "cancelled")
        elif state == "in_flight":
            query = query.where(vendor_orders.c.state.in_(("in_flight", "queued")))
        elif state:
            query = query.where(vendor_orders.c.state == state)
        if vendor:
            query = query.where(vendor_orders.c.vendor == vendor)
        if q:
            text = q.strip()
            if text.startswith(GID_PREFIX):
                query = query.where(vendor_orders.c.merchant_order_id == text)
            else:
                name = text if text.startswith("#") else f"#{text}"
                column = vendor_orders.c.merchant_order_name
                # the range is what an index serves (SQLite uses no index for LIKE ? || '%'); LIKE keeps the
                # prefix exact under any collation
                query = query.where(
                    column >= name,
                    column < name[:-1] + chr(ord(name[-1]) + 1),
                    column.startswith(name, autoescape=True),
                )
        query = query.order_by(vendor_orders.c.updated_at.desc()).limit(max(1, min(limit, 500)))
        with self.engine.connect() as conn:
            return [self._share(p) for p in conn.execute(query).all()]

    def _hour(self, column: Any) -> Any:
        """``column`` truncated to its UTC hour, as text ``YYYY-MM-DD HH`` (grouped in the database)."""
        if self.engine.dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
        return func.strftime("%Y-%m-%d %H", column)

    # -- the overview -------------------------------------------------------------------------------------------

    def overview(self, now: datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.now(UTC)
        since = (moment - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        with self.engine.connect() as conn:
            counted = conn.execute(
                select(vendor_orders.c.vendor, vendor_orders.c.state, func.count())
                .where(vendor_orders.c.vendor != "")
                .group_by(vendor_orders.c.vendor, vendor_orders.c.state)
            ).all()
            cancelled = conn.execute(
                select(vendor_orders.c.vendor, func.count())
                .where(vendor_orders.c.cancel_state == "cancelled")
                .group_by(vendor_orders.c.vendor)
            ).all()
            held = conn.execute(
                select(vendor_orders.c.vendor, vendor_orders.c.hold_kind, func.count())
                .where(vendor_orders.c.state == "held")
                .group_by(vendor_orders.c.vendor, vendor_orders.c.hold_kind)
            ).all()
            waiting = conn.execute(
                select(vendor_orders.c.vendor, vendor_orders.c.unmapped_skus).where(
                    vendor_orders.c.state == "held",
                    vendor_orders.c.hold_kind == "unmapped",
                )
            ).all()
            hour = self._hour(decisions.c.created_at)
            recent = conn.execute(
                select(hour, decisions.c.outcome, func.count())
                .where(decisions.c.created_at >= since, decisions.c.outcome.in_(("pushed", "held", "failed")))
                .group_by(hour, decisions.c.outcome)
            ).all()
            failures = sorted(  # one query per state: each walks ix_..._state from its newest row
                (
                    row
                    for state in ("failed", "unknown")
                    for row in conn.execute(
                        select(vendor_orders)
                        .where(vendor_orders.c.state == state)
                        .order_by(vendor_orders.c.updated_at.desc())
                        .limit(LATEST_FAILURES)
                    ).all()
                ),
                key=lambda row: row.updated_at,
                reverse=True,
            )[:LATEST_FAILURES]
            fixes = self._suggestions(conn, [(f.merchant_order_name, f.vendor) for f in failures])
        per_vendor: dict[str, Counter[str]] = defaultdict(Counter)
        totals: Counter[str] = Counter()
        for vendor, state, n in counted:
            shown = share_state(state, None)
            per_vendor[vendor][shown] += n
            totals[shown] += n
        for vendor, n in cancelled:  # a cancelled vendor order is counted as cancelled, not as pushed
            per_vendor[vendor]["cancelled"] += n
            per_vendor[vendor]["pushed"] -= n
            totals["cancelled"] += n
            totals["pushed"] -= n
        hours = [since + timedelta(hours=i) for i in range(24)]
        chart: dict[datetime, Counter[str]] = {h: Counter() for h in hours}
        for slot_text, outcome, n in recent:
            slot = datetime.strptime(str(slot_text)[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)
            if slot in chart:
                chart[slot][outcome] += n
        holds: dict[str, dict[str, int]] = defaultdict(dict)
        for vendor, kind, n in held:
            holds[kind or "other"][vendor] = n
        skus: dict[str, Counter[str]] = defaultdict(Counter)
        for vendor, raw in waiting:
            for sku in json.loads(raw) if raw else ["(not recorded: held before ordersync 0007)"]:
                skus[vendor][sku] += 1
        return {
            "generated_at": _iso(moment),
            "totals": {s: totals.get(s, 0) for s in STATES},
            "vendors": {v: {s: c.get(s, 0) for s in STATES} for v, c in sorted(per_vendor.items())},
            "last_24h": [
                {"hour": _iso(h), **{k: chart[h].get(k, 0) for k in ("pushed", "held", "failed")}}
                for h in hours
            ],
            "held_by_reason": {
                kind: {"total": sum(vendors.values()), "vendors": dict(sorted(vendors.items()))}
                for kind, vendors in sorted(holds.items())
            },
            "unmapped_skus": {
                vendor: [{"sku": sku, "orders": n} for sku, n in c.most_common()]
                for vendor, c in sorted(skus.items())
            },
            "latest_failures": [
                {**self._share(f), "suggestion": self._fix(f, fixes.get((f.merchant_order_name, f.vendor)))}
                for f in failures
            ],
        }
