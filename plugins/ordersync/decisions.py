"""The decision log both DAGs write: one line per decision in the task log, one ledger row per decision.

``order_sync`` decides per (order, vendor): ``order #1001 → vendor 'Acme Tools': pushed — …``;
``tracking_sync`` per (order, vendor, shipment): ``tracking order #1001 → vendor 'Acme Tools' shipment …``.
Rows are buffered and written in batches; a dry run logs and writes nothing. Safe to share between the
threads working on one vendor: one line and one row at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from ordersync.context import RunParams
from ordersync.ledger import Ledger

log = logging.getLogger("ordersync")

FLUSH_EVERY = 200


def decision_line(order_name: str, vendor: str, outcome: str, reason: str, dry_run: bool = False) -> str:
    prefix = "[dry run] " if dry_run else ""
    return f"{prefix}order {order_name} → vendor {vendor!r}: {outcome} — {reason}"


def tracking_line(
    order_name: str, vendor: str, key: str, outcome: str, reason: str, dry_run: bool = False
) -> str:
    prefix = "[dry run] " if dry_run else ""
    return f"{prefix}tracking order {order_name} → vendor {vendor!r} shipment {key}: {outcome} — {reason}"


class DecisionLog:
    def __init__(self, ledger: Ledger, run: RunParams) -> None:
        self.ledger = ledger
        self.run = run
        self.rows: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.failed: list[str] = []  # "#1001 → Acme Tools" (order_sync) / "#1001" (tracking_sync)
        self.quiet: Counter[str] = Counter()  # shares not pushed for a reason already reported, per rule
        self._lock = threading.Lock()

    def add(
        self, order_id: str, order_name: str, vendor: str, outcome: str, reason: str, operation: str = ""
    ) -> None:
        """An (order, vendor) decision of ``order_sync``."""
        self._record(
            decision_line(order_name, vendor or "(none)", outcome, reason, self.run.dry_run),
            outcome,
            f"{order_name} → {vendor}",
            {
                "merchant_order_id": order_id,
                "merchant_order_name": order_name,
                "vendor": vendor,
                "outcome": outcome,
                "reason": reason,
                "operation": operation,
            },
        )

    def add_shipment(
        self, order_id: str, order_name: str, vendor: str, key: str, outcome: str, reason: str
    ) -> None:
        """An (order, vendor, shipment) decision of ``tracking_sync``."""
        self._record(
            tracking_line(order_name, vendor, key, outcome, reason, self.run.dry_run),
            outcome,
            order_name,
            {
                "merchant_order_id": order_id,
                "merchant_order_name": order_name,
                "vendor": vendor,
                "outcome": outcome,
                "reason": f"tracking shipment {key}: {reason}",
                "operation": "tracking",
                "subject": key,
            },
        )

    def _record(self, line: str, outcome: str, failed_as: str, row: dict[str, Any]) -> None:
        with self._lock:
            (log.warning if outcome == "failed" else log.info)(line)
            self.counts[outcome] += 1
            if outcome == "failed" and failed_as not in self.failed:
                self.failed.append(failed_as)
            if not self.run.dry_run:
                self.rows.append(row)
                if len(self.rows) >= FLUSH_EVERY:
                    self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.ledger.record_decisions(self.run.run_id, self.rows)
            self.rows = []
