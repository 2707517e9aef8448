"""The webhook inbox (``ordersync_webhook_inbox``): store events the receiver accepted, until a run took them.

One row per event: Shopify's ``X-Shopify-Event-Id`` is the same for every retry of one event, WooCommerce's
order id + ``date_modified`` stands for one change, so a repeated delivery finds its row and adds nothing. The
receiver commits the row before it answers 200 (an answered event is never lost); the event run of the DAG
the row names claims it, reads that order, and marks it done; a scheduled run marks done what it has covered
(``reconcile``). A claim left by a run that died is taken again after ``STALE_CLAIM``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ordersync.ledger.schema import webhook_inbox as inbox

STALE_CLAIM = timedelta(hours=1)  # a claim older than this belongs to a run that died: take it again
KEEP_DONE = timedelta(days=7)  # done rows stay this long, so a late retry of the same event is still a repeat


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboxEvent:
    id: int
    conn_id: str
    dag_id: str
    topic: str
    order_id: str
    received_at: datetime


def _event(row: Any) -> InboxEvent:
    received = row.received_at
    if received is not None and received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    return InboxEvent(row.id, row.conn_id, row.dag_id, row.topic, row.order_id, received)


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, conn_id: str, dedup_key: str, dag_id: str, topic: str, order_id: str) -> bool:
        """Store one accepted event, committed when this returns; False when it was recorded already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(inbox).values(
                        conn_id=conn_id,
                        dedup_key=dedup_key[:255],
                        dag_id=dag_id,
                        topic=topic[:64],
                        order_id=order_id[:255],
                        received_at=_now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def _claimable(self, dag_id: str, run_key: str, conn_ids: Iterable[str] | None) -> Any:
        cond = and_(
            inbox.c.dag_id == dag_id,
            inbox.c.done_at.is_(None),
            or_(
                inbox.c.claimed_by.is_(None),
                inbox.c.claimed_by == run_key,
                inbox.c.claimed_at < _now() - STALE_CLAIM,
            ),
        )
        if conn_ids is not None:
            cond = and_(cond, inbox.c.conn_id.in_(list(conn_ids)))
        return cond

    def pending(self, dag_id: str, conn_ids: Iterable[str] | None = None) -> list[InboxEvent]:
        """Events no run has taken yet (or whose run died), oldest first; nothing is claimed."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(inbox).where(self._claimable(dag_id, "", conn_ids)).order_by(inbox.c.id)
            )
            return [_event(r) for r in rows]

    def claim(self, dag_id: str, run_key: str, conn_ids: Iterable[str] | None = None) -> list[InboxEvent]:
        """Take every waiting event of ``dag_id`` (of these stores only, when given) for the run ``run_key``.
        A retry of the same task gets the same events back, plus any that arrived since."""
        wanted = list(conn_ids) if conn_ids is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                update(inbox)
                .where(self._claimable(dag_id, run_key, wanted))
                .values(claimed_by=run_key, claimed_at=_now())
            )
            query = select(inbox).where(inbox.c.claimed_by == run_key, inbox.c.done_at.is_(None))
            if wanted is not None:
                query = query.where(inbox.c.conn_id.in_(wanted))
            return [_event(r) for r in conn.execute(query.order_by(inbox.c.id))]

    def finish(self, run_key: str, outcome: str = "handled", ids: Iterable[int] | None = None) -> int:
        """Mark the run's claimed events done (all of them, or ``ids``)."""
        cond = and_(inbox.c.claimed_by == run_key, inbox.c.done_at.is_(None))
        if ids is not None:
            cond = and_(cond, inbox.c.id.in_(list(ids)))
        with self.engine.begin() as conn:
            return conn.execute(update(inbox).where(cond).values(done_at=_now(), outcome=outcome)).rowcount

    def dismiss(self, ids: Iterable[int], outcome: str = "not_ours") -> int:
        """Mark events done without a run (e.g. a vendor order ordersync did not push)."""
        wanted = list(ids)
        if not wanted:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                update(inbox)
                .where(inbox.c.id.in_(wanted), inbox.c.done_at.is_(None))
                .values(done_at=_now(), outcome=outcome)
            ).rowcount

    def release(self, run_key: str) -> int:
        """Give the run's unfinished events back (it failed before handling them): the next run takes them."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(inbox)
                .where(inbox.c.claimed_by == run_key, inbox.c.done_at.is_(None))
                .values(claimed_by=None, claimed_at=None)
            ).rowcount

    def reconcile(self, dag_id: str, before: datetime, conn_ids: Iterable[str] | None = None) -> int:
        """A scheduled run read every change up to ``before``: waiting events received until then are covered."""
        cond = and_(
            inbox.c.dag_id == dag_id,
            inbox.c.done_at.is_(None),
            inbox.c.claimed_by.is_(None),
            inbox.c.received_at <= before,
        )
        if conn_ids is not None:
            cond = and_(cond, inbox.c.conn_id.in_(list(conn_ids)))
        with self.engine.begin() as conn:
            return conn.execute(
                update(inbox).where(cond).values(done_at=_now(), outcome="reconciled")
            ).rowcount

    def purge(self, keep: timedelta = KEEP_DONE) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(inbox).where(inbox.c.done_at < _now() - keep)).rowcount

    def counts(self) -> dict[str, int]:
        """Rows by state: waiting, claimed, and done per outcome (the Order Sync page, tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    inbox.c.dag_id, inbox.c.claimed_by.is_not(None), inbox.c.outcome, func.count()
                ).group_by(inbox.c.dag_id, inbox.c.claimed_by.is_not(None), inbox.c.outcome)
            ).all()
        out: dict[str, int] = {}
        for dag_id, claimed, outcome, n in rows:
            key = f"{dag_id}:{outcome or ('claimed' if claimed else 'waiting')}"
            out[key] = out.get(key, 0) + n
        return out

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(inbox).order_by(inbox.c.id))]
