"""tracking_sync's run scratch (``ordersync_run_shipments``): vendor orders whose shipments need the merchant.

The mapped vendor tasks read their own stores in parallel and stage here each vendor order ordersync pushed
whose shipments need a merchant read or write (a new shipment, changed tracking, an earlier attempt whose
outcome is unknown). ``write_merchant_fulfillments`` then takes the run's rows alone, with one merchant client
that sees the whole cost bucket, and removes each row it finished. What is left when the run's summary looks
is a vendor order the writer could not finish: that vendor's watermark stays (the next run reads the order
again) and the summary clears the run's rows. Exactly-once stays with ``ordersync_shipments``, which brackets
every merchant write (``in_flight`` → ``written``), so a row staged twice is never written twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Engine

from ordersync.ledger.schema import run_shipments as table

CHUNK = 500  # rows per statement (SQLite's bound-parameter limit stays far away)


@dataclass(frozen=True)
class StagedShipments:
    vendor: str
    vendor_order_id: str
    merchant_order_id: str
    payload: str  # the ShippedOrder, ordersync.tracking.model.to_json


class RunShipments:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def stage(self, run_id: str, items: Iterable[StagedShipments]) -> int:
        """Stage (or re-stage, the newest read wins) vendor orders for this run's merchant writer."""
        rows = [
            {
                "run_id": run_id,
                "vendor": i.vendor,
                "vendor_order_id": i.vendor_order_id,
                "merchant_order_id": i.merchant_order_id,
                "payload": i.payload,
                "staged_at": datetime.now(UTC),
                "error": None,
            }
            for i in items
        ]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            with self.engine.begin() as conn:
                for vendor in {r["vendor"] for r in chunk}:
                    conn.execute(
                        delete(table).where(
                            table.c.run_id == run_id,
                            table.c.vendor == vendor,
                            table.c.vendor_order_id.in_(
                                [r["vendor_order_id"] for r in chunk if r["vendor"] == vendor]
                            ),
                        )
                    )
                conn.execute(insert(table), chunk)
        return len(rows)

    def staged(self, run_id: str) -> list[StagedShipments]:
        """The run's rows not finished yet, grouped by merchant order (one merchant order's rows together)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.vendor, table.c.vendor_order_id, table.c.merchant_order_id, table.c.payload)
                .where(table.c.run_id == run_id)
                .order_by(table.c.merchant_order_id, table.c.vendor, table.c.vendor_order_id)
            )
            return [
                StagedShipments(r.vendor, r.vendor_order_id, r.merchant_order_id, r.payload) for r in rows
            ]

    def finished(self, run_id: str, vendor: str, vendor_order_id: str) -> None:
        """Every shipment of this vendor order was decided with no failure: its row goes."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(table).where(
                    table.c.run_id == run_id,
                    table.c.vendor == vendor,
                    table.c.vendor_order_id == vendor_order_id,
                )
            )

    def failed(self, run_id: str, vendor: str, vendor_order_id: str, error: str) -> None:
        """The writer could not finish this vendor order: the row stays, with why."""
        with self.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(
                    and_(
                        table.c.run_id == run_id,
                        table.c.vendor == vendor,
                        table.c.vendor_order_id == vendor_order_id,
                    )
                )
                .values(error=error[:2000])
            )

    def left(self, run_id: str) -> Counter[str]:
        """Vendor orders per vendor the run's writer did not finish (failed, or the writer never ran)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.vendor).where(table.c.run_id == run_id))
            return Counter(r.vendor for r in rows)

    def clear(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.run_id == run_id))

    def purge(self, older_than: timedelta = timedelta(days=2)) -> int:
        """Rows of runs that died before their summary."""
        with self.engine.begin() as conn:
            return conn.execute(
                delete(table).where(table.c.staged_at < datetime.now(UTC) - older_than)
            ).rowcount
