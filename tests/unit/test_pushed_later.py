"""One commit per create: a create's ``pushed`` row goes with the next pair's ``in_flight`` row, never before its
own ``in_flight`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from ordersync.ledger import Ledger

SYNC = {"fingerprint": "f" * 32, "synced_fields": "{}", "line_fingerprint": "l" * 32}
RUN = "order_sync/manual__1"


def _state(ledger: Ledger, order_id: str) -> str:
    return ledger.pairs([order_id], "Acme")[(order_id, "Acme")].state


def test_a_pushed_row_waits_for_the_next_in_flight_row_or_the_flush(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    ledger.begin_attempt("o1", "Acme", "#1", "m1", RUN)
    ledger.mark_pushed("o1", "Acme", "#1", "v1", "#V1", "created", SYNC, later=True)
    assert _state(ledger, "o1") == "in_flight"  # a crash now: the next run looks o1 up by its marker

    ledger.begin_attempt("o2", "Acme", "#2", "m2", RUN)  # one transaction: o1 pushed, o2 in flight
    assert (_state(ledger, "o1"), _state(ledger, "o2")) == ("pushed", "in_flight")
    pair = ledger.pairs(["o1"], "Acme")[("o1", "Acme")]
    assert (pair.vendor_order_id, pair.vendor_order_name, pair.fingerprint) == ("v1", "#V1", "f" * 32)

    ledger.mark_pushed("o2", "Acme", "#2", "v2", "#V2", "created", SYNC, later=True)
    ledger.flush_pushed()
    assert _state(ledger, "o2") == "pushed"
    with pytest.raises(RuntimeError, match="already pushed"):
        ledger.begin_attempt("o2", "Acme", "#2", "m2", RUN)


def test_rows_waiting_survive_a_failed_transaction(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    ledger.begin_attempt("o1", "Acme", "#1", "m1", RUN)
    ledger.mark_pushed("o1", "Acme", "#1", "v1", "#V1", "created", SYNC, later=True)
    ledger.begin_attempt("o2", "Acme", "#2", "m2", RUN)
    ledger.mark_pushed("o2", "Acme", "#2", "v2", "#V2", "created", SYNC)  # written at once
    ledger.begin_attempt("o3", "Acme", "#3", "m3", RUN)
    ledger.mark_pushed("o3", "Acme", "#3", "v3", "#V3", "created", SYNC, later=True)
    with pytest.raises(RuntimeError):  # o2 is pushed: refused, and the transaction with o3's row rolled back
        ledger.begin_attempt("o2", "Acme", "#2", "m2", RUN)
    assert _state(ledger, "o3") == "in_flight"
    ledger.flush_pushed()  # o3's row was kept for the next write
    assert _state(ledger, "o3") == "pushed"
