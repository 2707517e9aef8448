"""The refund ledger (``ordersync_refunds``): each merchant refund's part on each vendor order, exactly once.

A vendor refund is bracketed like a create: the row goes ``in_flight`` (its attempt counted) before the vendor
store is asked, and ``recorded`` with the vendor refund's id once it answered. A row found ``in_flight`` on a
later run may be at the vendor already (the answer was lost): the vendor order is searched for its marker
before anything is written again, and on Shopify the idempotency key (made from the row's ``id``) makes a
repeat of the same request return the refund it created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ordersync.ledger.schema import meta_table
from ordersync.ledger.schema import refunds as table

# states: the vendor order holds it (recorded), or nothing more is to be done (manual, skipped, before_push)
SETTLED = ("recorded", "manual", "skipped", "before_push")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RefundRow:
    id: int
    merchant_order_id: str
    vendor: str
    merchant_refund_id: str
    merchant_order_name: str
    state: str
    vendor_refund_id: str | None
    attempts: int
    detail: str | None
    last_error: str | None
    updated_at: datetime | None = None
    key_generation: int = 0

    def key_for(self, vendor_order_id: str) -> str:
        """The Shopify idempotency key of this vendor refund: the merchant refund, the vendor order and the row
        (unique across ledgers and stores), and the row's key generation, which a refused attempt moves on (a
        retry after a refusal may send other input, which Shopify refuses under the same key). It stays the
        same while the outcome is unknown, so a repeat returns the refund already made."""
        refund = self.merchant_refund_id.rsplit("/", 1)[-1]
        order = vendor_order_id.rsplit("/", 1)[-1]
        return f"ordersync-refund-{refund}-{order}-{self.id}.{self.key_generation}"

    @property
    def settled(self) -> bool:
        return self.state in SETTLED


def _row(r: Any) -> RefundRow:
    return RefundRow(
        id=r.id,
        merchant_order_id=r.merchant_order_id,
        vendor=r.vendor,
        merchant_refund_id=r.merchant_refund_id,
        merchant_order_name=r.merchant_order_name,
        state=r.state,
        vendor_refund_id=r.vendor_refund_id,
        attempts=r.attempts or 0,
        detail=r.detail,
        last_error=r.last_error,
        updated_at=r.updated_at,
        key_generation=r.key_generation or 0,
    )


class Refunds:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def synced_since(self) -> datetime | None:
        """When refunds began to be mirrored (the ledger's migration 0008): older refunds on vendor orders pushed
        before it are not mirrored by the upgrade."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "refunds_synced_since")
            ).scalar()
        if not value:
            return None
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def rows(
        self, order_ids: Iterable[str], vendor: str | None = None
    ) -> dict[tuple[str, str, str], RefundRow]:
        """The rows of these merchant orders (of one vendor), by (order, vendor, merchant refund)."""
        ids = list(dict.fromkeys(order_ids))
        out: dict[tuple[str, str, str], RefundRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = select(table).where(table.c.merchant_order_id.in_(ids[start : start + 500]))
                if vendor is not None:
                    query = query.where(table.c.vendor == vendor)
                for r in conn.execute(query):
                    out[(r.merchant_order_id, r.vendor, r.merchant_refund_id)] = _row(r)
        return out

    def for_share(self, order_id: str, vendor: str) -> list[RefundRow]:
        with self.engine.connect() as conn:
            return [
                _row(r)
                for r in conn.execute(
                    select(table)
                    .where(table.c.merchant_order_id == order_id, table.c.vendor == vendor)
                    .order_by(table.c.id)
                )
            ]

    def _get(self, conn: Any, order_id: str, vendor: str, refund_id: str) -> Any:
        return conn.execute(
            select(table).where(
                table.c.merchant_order_id == order_id,
                table.c.vendor == vendor,
                table.c.merchant_refund_id == refund_id,
            )
        ).first()

    def _upsert(
        self, order_id: str, vendor: str, refund_id: str, name: str, values: dict[str, Any], count: bool
    ) -> RefundRow:
        moment = _now()
        for _ in range(2):  # a concurrent insert of the same row: read it and update
            with self.engine.begin() as conn:
                found = self._get(conn, order_id, vendor, refund_id)
                if found is None:
                    try:
                        conn.execute(
                            insert(table).values(
                                merchant_order_id=order_id,
                                vendor=vendor,
                                merchant_refund_id=refund_id,
                                merchant_order_name=name,
                                attempts=1 if count else 0,
                                key_generation=0,
                                created_at=moment,
                                updated_at=moment,
                                **values,
                            )
                        )
                    except IntegrityError:
                        continue
                else:
                    again = count and found.state == "failed"  # refused before: a new key for new input
                    conn.execute(
                        update(table)
                        .where(table.c.id == found.id)
                        .values(
                            updated_at=moment,
                            **({"attempts": (found.attempts or 0) + 1} if count else {}),
                            **({"key_generation": (found.key_generation or 0) + 1} if again else {}),
                            **values,
                        )
                    )
                return _row(self._get(conn, order_id, vendor, refund_id))
        raise RuntimeError(f"could not write the refund row of {name} at {vendor}")  # pragma: no cover

    def begin(
        self, order_id: str, vendor: str, refund_id: str, name: str, detail: str, run_id: str
    ) -> RefundRow:
        """Before the vendor is asked: the row is ``in_flight`` with one more attempt; returns it (with its key)."""
        return self._upsert(
            order_id,
            vendor,
            refund_id,
            name,
            {"state": "in_flight", "detail": detail, "run_id": run_id},
            count=True,
        )

    def finish(self, row: RefundRow, state: str, **values: Any) -> None:
        """After the vendor answered (``recorded``, with ``vendor_refund_id``), refused (``failed``/``manual``,
        with ``last_error``), or the answer was lost (stays ``in_flight``, with ``last_error``)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(table).where(table.c.id == row.id).values(state=state, updated_at=_now(), **values)
            )

    def settle(
        self, order_id: str, vendor: str, refund_id: str, name: str, state: str, detail: str, run_id: str
    ) -> RefundRow:
        """A refund with nothing to write at the vendor (``skipped``, ``before_push``, ``manual``): recorded so it
        is said once."""
        return self._upsert(
            order_id,
            vendor,
            refund_id,
            name,
            {"state": state, "detail": detail, "run_id": run_id},
            count=False,
        )
