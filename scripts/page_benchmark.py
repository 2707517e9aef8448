"""Benchmark: the Order Sync page's reads (``ordersync.ledger.story.Story``) on a generated ledger (issue 15).

    python scripts/page_benchmark.py                                  # 1,000,000 vendor-order rows, SQLite
    python scripts/page_benchmark.py --ledger postgresql              # the same on PostgreSQL
    python scripts/page_benchmark.py --rows 100000 --json docs/benchmarks-page.json
    python scripts/page_benchmark.py --table docs/benchmarks-page.json   # a results file as Markdown

What it does:

1. **Generates a ledger** at the current schema (``Ledger(url).migrate()``, so every index of migration 0007 is
   there): ``--rows`` (default 1,000,000) vendor-order rows (``ordersync_vendor_orders``, one per (merchant order,
   vendor) share) over ``--vendors`` (default 20) vendors, even-numbered on Shopify, odd-numbered on WooCommerce;
   merchant orders of 1 to 4 shares (20/30/30/20 %: ~``rows`` / 2.5 orders, one ``ordersync_merchant_orders`` row
   each), placed evenly over ``--days`` (default 365) up to a fixed moment. Share states: 87 % pushed (1.5 % of
   those cancelled at the vendor), 3.5 % held unpaid, 2.5 % held unmapped (with the JSON list of 1-3 unmapped
   SKUs), 3 % skipped (history), 1.5 % skipped (fulfilled), 2 % failed, 0.3 % unknown, 0.2 % queued/in flight.
   ``--decisions-per-share`` (default 3) decisions per share, written run after run (the first for every share,
   then the second for every share, ...: one order's decisions are spread over the table, as real runs leave
   them); one shipment for half of the pushed shares (a second one for a tenth of those); one alert per failed
   or unknown share. Rows are written in big batches (SQLite: ``executemany`` with ``synchronous=OFF`` for the
   load only; PostgreSQL: ``COPY``, then ``VACUUM ANALYZE`` as autovacuum would). SQLite is a file in a
   temporary directory (``--path`` to choose it), PostgreSQL a fresh schema on ``--postgres-url``'s server
   (dropped afterwards unless ``--keep``).
2. **Times the reads** after a warm-up, each call on its own (wall time of the Python call, rows to dicts
   included): ``Story.order(ref)`` for ``--samples`` (default 200) random orders, each by its name (``#N``), its
   numeric id and its GID (and by the digits of its name, which costs one lookup more: the GID first); the
   ``Story.shares`` lists (a name search, a GID search, by state, by vendor and state, the unfiltered list);
   ``Story.overview``. Median, p95 and max per case, and per SQL statement of the order page.
3. **Prints the query plans** (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL) of every statement
   those calls ran, captured with their parameters from SQLAlchemy, and flags the ones that scan a table or sort
   in a temporary B-tree.

The order page target (issue 15): a ``Story.order`` call (every statement of the page) under 100 ms at p95.
``--json`` merges the results into a file keyed by rows and ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sqlalchemy import event, func, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

GID = "gid://shopify/Order/"
LEGACY_BASE = 5_900_000_000_000  # 13-digit ids, as Shopify gives them now
FIRST_NUMBER = 1001  # the first order's name: #1001
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # the generated ledger's "now" (the overview is read at it)
TARGET_MS = 100.0
POSTGRES_SERVER_URL = os.environ.get(
    "ORDERSYNC_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)

# (state, hold_kind, cancelled) with their share of the shares
KINDS = (
    ("pushed", None, False),
    ("pushed", None, True),
    ("held", "unpaid", False),
    ("held", "unmapped", False),
    ("skipped", "history", False),
    ("skipped", "fulfilled", False),
    ("failed", None, False),
    ("unknown", None, False),
    ("queued", None, False),
    ("in_flight", None, False),
)
WEIGHTS = (0.857, 0.013, 0.035, 0.025, 0.03, 0.015, 0.02, 0.003, 0.001, 0.001)
SHARES_PER_ORDER = ((1, 0.2), (2, 0.3), (3, 0.3), (4, 0.2))  # mean 2.5
SKUS_PER_VENDOR = 40
ERRORS = (
    "vendor answered HTTP 502 Bad Gateway",
    "read timed out after 30 s",
    "orderCreate: Variant is out of stock",
    "customer email is invalid",
)
COMPANIES = ("UPS", "DHL Express", "FedEx", "USPS")


def vendor_name(v: int) -> str:
    return f"Vendor {v:02d}"


def order_name(i: int) -> str:
    return f"#{FIRST_NUMBER + i}"


def legacy_id(i: int) -> str:
    return str(LEGACY_BASE + 7 * i)


def order_gid(i: int) -> str:
    return GID + legacy_id(i)


# ======================================================================================================
# The generated ledger
# ======================================================================================================


@dataclass
class Layout:
    """Which shares each generated order has: shares of order ``i`` are ``first[i]:first[i + 1]``."""

    first: array = field(default_factory=lambda: array("I", [0]))
    vendor: array = field(default_factory=lambda: array("B"))
    kind: array = field(default_factory=lambda: array("B"))
    ships: array = field(default_factory=lambda: array("B"))

    @property
    def orders(self) -> int:
        return len(self.first) - 1

    def shares_of(self, i: int) -> range:
        return range(self.first[i], self.first[i + 1])

    def expected(self, i: int) -> list[dict[str, Any]]:
        """What ``Story.order`` should say of order ``i``: per share (by vendor) its state and shipment count."""
        out = []
        for s in self.shares_of(i):
            state, hold_kind, cancelled = KINDS[self.kind[s]]
            shown = "cancelled" if cancelled else ("in_flight" if state == "queued" else state)
            out.append(
                {
                    "vendor": vendor_name(self.vendor[s]),
                    "state": shown,
                    "hold_kind": hold_kind,
                    "shipments": self.ships[s],
                }
            )
        return sorted(out, key=lambda x: x["vendor"])


class Clock:
    """Epoch seconds as the dialect's timestamp text (cached per minute: formatting is most of the load's CPU)."""

    def __init__(self, dialect: str) -> None:
        self.suffix = ".000000" if dialect == "sqlite" else "+00"
        self.minutes: dict[int, str] = {}
        self.runs: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        minute, second = divmod(ts, 60)
        prefix = self.minutes.get(minute)
        if prefix is None:
            prefix = self.minutes[minute] = datetime.fromtimestamp(minute * 60, UTC).strftime(
                "%Y-%m-%d %H:%M"
            )
        return f"{prefix}:{second:02d}{self.suffix}"

    def run_id(self, ts: int) -> str:
        """The scheduled run (every 5 minutes) that decided at ``ts``."""
        slot = ts // 300
        run = self.runs.get(slot)
        if run is None:
            run = self.runs[slot] = "scheduled__" + datetime.fromtimestamp(slot * 300, UTC).isoformat()
        return run


class Writer:
    """Bulk inserts: ``executemany`` on SQLite, ``COPY`` on PostgreSQL, on one raw DBAPI connection."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.rows: Counter[str] = Counter()
        cur = self.raw.cursor()
        if self.dialect == "sqlite":
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
                cur.execute(f"PRAGMA {pragma}")
        else:
            cur.execute("SET synchronous_commit TO OFF")
        cur.close()

    def put(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        cur = self.raw.cursor()
        if self.dialect == "sqlite":
            marks = ",".join("?" * len(columns))
            cur.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
        else:
            import io

            text = "\n".join("\t".join(_copy_value(v) for v in row) for row in rows) + "\n"
            cur.copy_expert(f"COPY {table} ({','.join(columns)}) FROM STDIN", io.StringIO(text))
        cur.close()
        self.rows[table] += len(rows)

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.commit()
        cur = self.raw.cursor()
        if self.dialect == "sqlite":
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        self.raw.close()


class NullWriter:
    """Counts the rows a :class:`Writer` would write, and writes nothing."""

    def __init__(self) -> None:
        self.rows: Counter[str] = Counter()

    def put(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        self.rows[table] += len(rows)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def _copy_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, int):
        return str(v)
    if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return v


VENDOR_ORDER_COLUMNS = (
    "merchant_order_id", "vendor", "merchant_order_name", "state", "hold_kind", "reason", "marker",
    "vendor_order_id", "vendor_order_name", "attempts", "first_attempt_at", "last_attempt_at", "last_error",
    "pushed_at", "run_id", "updated_at", "fingerprint", "synced_fields", "line_fingerprint",
    "manual_fingerprint", "cancel_state", "cancelled_at", "unmapped_skus",
)  # fmt: skip
MERCHANT_COLUMNS = (
    "merchant_order_id", "merchant_order_name", "legacy_id", "financial_status", "fulfillment_status",
    "buyer_name", "buyer_email", "buyer_phone", "created_at", "updated_at", "seen_at",
)  # fmt: skip
SHIPMENT_COLUMNS = (
    "vendor", "vendor_order_id", "vendor_shipment_key", "merchant_order_id", "merchant_order_name",
    "merchant_fulfillment_id", "fingerprint", "tracking", "state", "error", "attempts", "first_attempt_at",
    "written_at", "run_id", "updated_at",
)  # fmt: skip
DECISION_COLUMNS = (
    "run_id", "merchant_order_id", "merchant_order_name", "vendor", "outcome", "reason", "created_at",
    "operation", "subject",
)  # fmt: skip
ALERT_COLUMNS = (
    "run_id", "kind", "merchant_order_name", "vendor", "operation", "message", "suggestion", "created_at",
)  # fmt: skip


def _hex(n: int) -> str:
    return f"{(n * 0x9E3779B97F4A7C15) & ((1 << 256) - 1):064x}"


@dataclass
class Generated:
    layout: Layout
    rows: dict[str, int]
    seconds: float
    now: datetime
    decisions_per_share: int
    vendors: int


def round_offset(r: int) -> int:
    """Seconds from an order's creation to its ``r``-th decision (0: the first run after it, then every 6 h)."""
    return 90 + r * 6 * 3600


def generate(
    engine: Engine,
    rows: int = 1_000_000,
    vendors: int = 20,
    decisions_per_share: int = 3,
    days: int = 365,
    seed: int = 15,
    chunk_orders: int = 20_000,
    now: datetime = NOW,
    progress: Callable[[str], None] | None = None,
    write: bool = True,
) -> Generated:
    """Fill a migrated, empty ledger with ``rows`` vendor-order rows and what goes with them (module docstring).
    ``write=False``: only the layout (the same for the same arguments), for a ledger generated before."""
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    rng = random.Random(seed)
    clock = Clock(engine.dialect.name)
    end = int(now.timestamp()) - 60
    span = days * 86400
    orders_estimate = max(1, round(rows / 2.5))
    step = span / orders_estimate
    start = end - span
    sizes = [k for k, _ in SHARES_PER_ORDER]
    size_weights = [w for _, w in SHARES_PER_ORDER]
    kinds = list(range(len(KINDS)))

    def created(i: int) -> int:
        return min(end, int(start + i * step))

    def at(i: int, r: int) -> int:
        return min(end, created(i) + round_offset(r))

    layout = Layout()
    writer = Writer(engine) if write else NullWriter()
    shipment_serial = 0
    i = 0
    placed = 0
    while placed < rows:  # pass 1: orders, shares, shipments, alerts, the first decision of each share
        vo: list[tuple] = []
        mo: list[tuple] = []
        sh: list[tuple] = []
        al: list[tuple] = []
        de: list[tuple] = []
        for _ in range(chunk_orders):
            if placed >= rows:
                break
            k = min(rng.choices(sizes, size_weights)[0], rows - placed)
            picked = sorted(rng.sample(range(vendors), k))
            oid, name, made = order_gid(i), order_name(i), created(i)
            first_ts, last_ts = at(i, 0), at(i, decisions_per_share - 1)
            unpaid = False
            fulfilled_shares = 0
            for v in picked:
                kind = rng.choices(kinds, WEIGHTS)[0]
                state, hold_kind, cancelled = KINDS[kind]
                vendor = vendor_name(v)
                serial = placed
                shopify = v % 2 == 0
                reason = last_error = vendor_order_id = vendor_order_name = pushed_at = None
                first_attempt = last_attempt = cancelled_at = unmapped = fingerprint = synced = lines = None
                cancel_state = None
                attempts = 0
                ships = 0
                if state == "pushed":
                    vendor_order_id = (
                        f"gid://shopify/Order/{7_100_000_000_000 + serial}"
                        if shopify
                        else str(90_000 + serial)
                    )
                    vendor_order_name = f"#{2000 + serial}" if shopify else str(90_000 + serial)
                    reason = f"pushed as vendor order {vendor_order_name} ({vendor_order_id})"
                    attempts = 1
                    first_attempt = last_attempt = pushed_at = clock(first_ts)
                    fingerprint, lines = _hex(serial), _hex(serial + 1)
                    synced = json.dumps(
                        {
                            "email": f"buyer{i}@mail.test",
                            "phone": None,
                            "note": "",
                            "shipping_address": {
                                "city": "Springfield",
                                "zip": f"{10000 + i % 89999}",
                                "country": "US",
                            },
                        }
                    )
                    if cancelled:
                        cancel_state, cancelled_at = "cancelled", clock(last_ts)
                    elif rng.random() < 0.5:
                        ships = 2 if rng.random() < 0.1 else 1
                        fulfilled_shares += 1
                elif state == "held" and hold_kind == "unpaid":
                    unpaid = True
                    reason = "not paid yet (financial status PENDING)"
                elif state == "held":
                    skus = sorted(rng.sample(range(SKUS_PER_VENDOR), rng.randint(1, 3)))
                    names = [f"SKU-{v:02d}-{s:03d}" for s in skus]
                    unmapped = json.dumps(names)
                    reason = f"SKUs not found at the vendor: {', '.join(names)}"
                elif state == "skipped":
                    reason = (
                        "placed before the sync horizon (initial_sync_days)"
                        if hold_kind == "history"
                        else "already fulfilled at the marketplace"
                    )
                elif state in ("failed", "unknown"):
                    attempts = rng.randint(1, 3)
                    first_attempt, last_attempt = clock(first_ts), clock(last_ts)
                    last_error = rng.choice(ERRORS)
                    reason = (
                        last_error if state == "failed" else f"the create may have happened: {last_error}"
                    )
                    al.append(
                        (
                            clock.run_id(last_ts), "failed", name, vendor, "create", last_error,
                            f"Check the '{vendor}' store and its Airflow connection, then re-run order_sync for {name}",
                            clock(last_ts),
                        )
                    )  # fmt: skip
                else:  # queued / in flight
                    attempts = 1 if state == "in_flight" else 0
                    reason = "queued for push"
                    if state == "in_flight":
                        first_attempt = last_attempt = clock(last_ts)
                vo.append(
                    (
                        oid, vendor, name, state, hold_kind, reason,
                        f"ordersync:{legacy_id(i)}" if attempts else None, vendor_order_id, vendor_order_name,
                        attempts, first_attempt, last_attempt, last_error, pushed_at, clock.run_id(last_ts),
                        clock(last_ts), fingerprint, synced, lines, None, cancel_state, cancelled_at, unmapped,
                    )
                )  # fmt: skip
                for n in range(ships):
                    shipment_serial += 1
                    key = (
                        f"gid://shopify/Fulfillment/{8_200_000_000_000 + shipment_serial}"
                        if shopify
                        else f"{shipment_serial:016x}"
                    )
                    tracking = json.dumps(
                        {
                            "company": COMPANIES[shipment_serial % len(COMPANIES)],
                            "numbers": [f"1Z{shipment_serial:016d}"],
                            "urls": [f"https://tracking.carrier.test/{shipment_serial}"],
                        }
                    )
                    shipped = clock(min(end, first_ts + 86400 * (1 + n)))
                    sh.append(
                        (
                            vendor, vendor_order_id, key, oid, name,
                            f"gid://shopify/Fulfillment/{6_300_000_000_000 + shipment_serial}", _hex(shipment_serial),
                            tracking, "written", None, 1, shipped, shipped, clock.run_id(last_ts), shipped,
                        )
                    )  # fmt: skip
                de.append(
                    _decision(clock, i, oid, name, vendor, kind, ships, 0, decisions_per_share, first_ts)
                )
                layout.vendor.append(v)
                layout.kind.append(kind)
                layout.ships.append(ships)
                placed += 1
            fulfillment = (
                "FULFILLED"
                if fulfilled_shares == len(picked)
                else ("PARTIALLY_FULFILLED" if fulfilled_shares else None)
            )
            mo.append(
                (
                    oid, name, legacy_id(i), "PENDING" if unpaid else "PAID", fulfillment, f"Buyer {i}",
                    f"buyer{i}@mail.test", f"+1555{i % 10_000_000:07d}", clock(made), clock(last_ts), clock(last_ts),
                )
            )  # fmt: skip
            layout.first.append(placed)
            i += 1
        writer.put("ordersync_merchant_orders", MERCHANT_COLUMNS, mo)
        writer.put("ordersync_vendor_orders", VENDOR_ORDER_COLUMNS, vo)
        writer.put("ordersync_shipments", SHIPMENT_COLUMNS, sh)
        writer.put("ordersync_alerts", ALERT_COLUMNS, al)
        writer.put("ordersync_decisions", DECISION_COLUMNS, de)
        writer.commit()
        say(f"  {placed:,} vendor-order rows ({i:,} orders) in {time.perf_counter() - started:.0f} s")
    for r in range(1, decisions_per_share):  # later runs: one more decision for every share
        for lo in range(0, layout.orders, chunk_orders):
            de = []
            for o in range(lo, min(layout.orders, lo + chunk_orders)):
                oid, name, ts = order_gid(o), order_name(o), at(o, r)
                for s in layout.shares_of(o):
                    de.append(
                        _decision(
                            clock, o, oid, name, vendor_name(layout.vendor[s]), layout.kind[s], layout.ships[s], r,
                            decisions_per_share, ts,
                        )
                    )  # fmt: skip
            writer.put("ordersync_decisions", DECISION_COLUMNS, de)
            writer.commit()
        say(f"  decisions of run {r + 1} of {decisions_per_share} in {time.perf_counter() - started:.0f} s")
    writer.close()
    if write and engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        raw.rollback()
        raw.driver_connection.autocommit = True
        cur = raw.cursor()
        for table in writer.rows:
            cur.execute(f"VACUUM ANALYZE {table}")
        cur.close()
        raw.close()
        say(f"  VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
    engine.dispose()  # the timings use fresh connections, not the load's
    return Generated(
        layout, dict(writer.rows), time.perf_counter() - started, now, decisions_per_share, vendors
    )


def _decision(
    clock: Clock,
    i: int,
    oid: str,
    name: str,
    vendor: str,
    kind: int,
    ships: int,
    r: int,
    rounds: int,
    ts: int,
) -> tuple:
    state, hold_kind, cancelled = KINDS[kind]
    operation = subject = None
    if state == "pushed":
        if r == 0:
            outcome, reason, operation = "pushed", "created the vendor order", "create"
        elif cancelled and r == rounds - 1:
            outcome, reason, operation = "cancelled", "cancelled (reason CUSTOMER, restocked)", "cancel"
        elif ships and r == rounds - 1:
            outcome, operation, subject = "written", "tracking", f"shipment-{i}-{vendor[-2:]}"
            reason = f"tracking shipment {subject}: merchant fulfilment created"
        else:
            outcome, reason = "unchanged", "already pushed; nothing changed"
    elif state == "held":
        outcome = "held"
        reason = (
            "not paid yet (financial status PENDING)"
            if hold_kind == "unpaid"
            else "SKUs not found at the vendor"
        )
    elif state == "skipped":
        outcome, reason = "skipped", f"skipped ({hold_kind})"
    elif state in ("failed", "unknown"):
        outcome, reason, operation = "failed", ERRORS[(i + r) % len(ERRORS)], "create"
    else:
        outcome, reason = "queued", "queued for push"
    return (clock.run_id(ts), oid, name, vendor, outcome, reason, clock(ts), operation, subject)


# ======================================================================================================
# The ledger to benchmark
# ======================================================================================================


@dataclass
class Target:
    url: str
    cleanup: Callable[[], None]


def sqlite_target(path: str | None = None, reuse: bool = False) -> Target:
    if path:
        file = Path(path).resolve()
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{file}{suffix}").unlink(missing_ok=True)
        return Target(f"sqlite:///{file}", lambda: None)
    tmp = Path(tempfile.mkdtemp(prefix="ordersync-page-bench-"))
    return Target(f"sqlite:///{tmp / 'ledger.db'}", lambda: shutil.rmtree(tmp, ignore_errors=True))


def postgres_target(
    server_url: str = POSTGRES_SERVER_URL, keep: bool = False, schema: str | None = None
) -> Target:
    """A fresh schema of its own on the server (as tests.support.fresh_postgres_url makes them), or ``schema``
    (one a run kept), kept."""
    import uuid

    from sqlalchemy import create_engine, text

    if schema:
        keep = True
    else:
        schema = f"page_bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(server_url)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine.dispose()

    def drop() -> None:
        if keep:
            print(f"kept PostgreSQL schema {schema}")
            return
        from ordersync.ledger import _engines

        for url, eng in list(_engines.items()):
            if schema in url:
                eng.dispose()
                _engines.pop(url, None)
        dropper = create_engine(server_url)
        with dropper.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        dropper.dispose()

    sep = "&" if "?" in server_url else "?"
    return Target(f"{server_url}{sep}options=-csearch_path%3D{schema}", drop)


def ledger_counts(engine: Engine) -> dict[str, int]:
    from ordersync.ledger.schema import alerts_table, decisions, merchant_orders, shipments, vendor_orders

    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (vendor_orders, merchant_orders, decisions, shipments, alerts_table)
        }


# ======================================================================================================
# Timings and plans
# ======================================================================================================


class Statements:
    """The SQL statements an engine runs while :meth:`capture` is on, with their parameters and times."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.log: list[dict[str, Any]] = []
        self._on = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SA hook
        if self._on:
            conn.info["ordersync_bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SA hook
        if self._on:
            elapsed = (time.perf_counter() - conn.info.pop("ordersync_bench_t0")) * 1000
            self.log.append({"sql": statement, "params": parameters, "ms": elapsed})

    def capture(self, fn: Callable[[], Any]) -> list[dict[str, Any]]:
        self.log = []
        self._on = True
        try:
            fn()
        finally:
            self._on = False
        return self.log

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


_CONDITION = re.compile(r"(ordersync_\w+)\.(\w+)\s*(=|!=|>=|<=|>|<|IN|LIKE|NOT IN)", re.IGNORECASE)


def label(sql: str) -> str:
    """``table: where-columns`` of a statement, e.g. ``ordersync_decisions: merchant_order_id= (ORDER BY id)``."""
    flat = " ".join(sql.split())
    table = re.search(r"\bFROM (\w+)", flat)
    where = flat.split(" WHERE ", 1)[1] if " WHERE " in flat else ""
    where_part = re.split(r" (GROUP BY|ORDER BY|LIMIT) ", where)[0]
    conds = list(dict.fromkeys(f"{c}{op.upper()}" for _t, c, op in _CONDITION.findall(where_part)))
    extra = []
    if " GROUP BY " in flat:
        extra.append("GROUP BY " + re.split(r" (ORDER BY|LIMIT) ", flat.split(" GROUP BY ", 1)[1])[0])
    if " ORDER BY " in flat:
        extra.append("ORDER BY " + re.split(r" LIMIT ", flat.split(" ORDER BY ", 1)[1])[0])
    short = re.sub(r"ordersync_\w+\.", "", " ".join(extra))
    name = table.group(1) if table else "?"
    return f"{name}: {' '.join(conds) or '(all rows)'}" + (f" [{short}]" if short else "")


def explain(engine: Engine, statement: dict[str, Any]) -> dict[str, Any]:
    """The plan of one captured statement; ``full_scan``: the plan nodes that read every row of a table or of an
    index (SQLite ``SCAN``, PostgreSQL ``Seq Scan`` or an index scan without an index condition); ``sorts``:
    sorts the plan does (harmless after a search that found a few rows, not after a scan)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + statement["sql"], statement["params"])
            rows = cur.fetchall()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            scans = [x.strip() for x in lines if x.strip().startswith("SCAN ") and "CONSTANT ROW" not in x]
            sorts = [x.strip() for x in lines if "USE TEMP B-TREE" in x]
            walks: list[str] = []
            if " LIMIT " in statement["sql"] and not any("ORDER BY" in x for x in sorts):
                # an index walked in the ORDER BY's order stops at the LIMIT: not every row, if enough match
                walks = [x for x in scans if " USING " in x and "INDEX" in x]
                scans = [x for x in scans if x not in walks]
        else:
            cur.execute("EXPLAIN " + statement["sql"], statement["params"])
            lines = [r[0] for r in cur.fetchall()]
            cur.execute("EXPLAIN (FORMAT JSON) " + statement["sql"], statement["params"])
            tree = cur.fetchone()[0]
            tree = json.loads(tree) if isinstance(tree, str) else tree
            scans, sorts = [], []

            def walk(node: dict[str, Any]) -> None:
                kind = node.get("Node Type", "")
                where = f"{kind} on {node.get('Relation Name', '?')}" + (
                    f" using {node['Index Name']}" if node.get("Index Name") else ""
                )
                if kind == "Seq Scan" or (
                    kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node
                ):
                    scans.append(where + (f" (filter {node['Filter']})" if node.get("Filter") else ""))
                if kind in ("Sort", "Incremental Sort"):
                    sorts.append(f"{kind} by {', '.join(node.get('Sort Key', []))}")
                for child in node.get("Plans", []):
                    walk(child)

            walk(tree[0]["Plan"])
            walks = []
            if tree[0]["Plan"].get("Node Type") == "Limit" and not sorts:
                walks = [x for x in scans if not x.startswith("Seq Scan")]
                scans = [x for x in scans if x not in walks]
        cur.close()
    finally:
        raw.close()
    return {
        "label": label(statement["sql"]),
        "sql": " ".join(statement["sql"].split()),
        "plan": lines,
        "full_scan": scans,
        "ordered_walk": walks,  # reads the rows in order until the LIMIT is reached (as many as it takes)
        "sorts": sorts,
    }


def raw_ms(engine: Engine, statement: dict[str, Any]) -> float:
    """One captured statement run again on the DBAPI connection, every row fetched: the database's time (the
    hook's own figure is only the time to the first row on SQLite, which steps a query as its rows are read)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        t0 = time.perf_counter()
        cur.execute(statement["sql"], statement["params"])
        cur.fetchall()
        elapsed = (time.perf_counter() - t0) * 1000
        cur.close()
        raw.rollback()
    finally:
        raw.close()
    return elapsed


def summary(ms: list[float]) -> dict[str, Any]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(p95, 3),
        "max_ms": round(ordered[-1], 3),
    }


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


REF_KINDS = ("name", "id", "gid", "name digits")


def ref_for(i: int, kind: str) -> str:
    return {
        "name": order_name(i),
        "id": legacy_id(i),
        "gid": order_gid(i),
        "name digits": str(FIRST_NUMBER + i),
    }[kind]


def measure(
    engine: Engine,
    gen: Generated,
    samples: int = 200,
    repeats: int = 30,
    overview_repeats: int = 10,
    budget_seconds: float = 15.0,
    seed: int = 16,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the page's reads on a generated ledger; capture and explain the statements they run."""
    from ordersync.ledger.story import Story

    say = progress or (lambda _m: None)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    story = Story(engine)
    layout = gen.layout
    rng = random.Random(seed)
    orders = layout.orders
    picked = rng.sample(range(orders), min(samples, orders))
    warm = [rng.randrange(orders) for _ in range(min(50, orders))]
    for o in warm:  # warm-up: connections, compiled-statement cache, the database's pages for the indexes
        for kind in REF_KINDS:
            story.order(ref_for(o, kind))
    calls = [(o, kind) for o in picked for kind in REF_KINDS]
    rng.shuffle(calls)
    by_kind: dict[str, list[float]] = defaultdict(list)
    wrong = 0
    for o, kind in calls:
        ms, page = _time(lambda o=o, kind=kind: story.order(ref_for(o, kind)))
        by_kind[kind].append(ms)
        if page is None or [s["vendor"] for s in page["shares"]] != [e["vendor"] for e in layout.expected(o)]:
            wrong += 1
    order_results = {kind: summary(by_kind[kind]) for kind in REF_KINDS}
    order_results["all refs"] = summary([m for kind in REF_KINDS for m in by_kind[kind]])
    order_results["name, id, gid"] = summary([m for kind in ("name", "id", "gid") for m in by_kind[kind]])
    say(f"  order page: {len(calls)} calls, p95 {order_results['all refs']['p95_ms']} ms")

    # statements of the order page, per statement (an order with a failed share runs the alerts' query too)
    statements = Statements(engine)
    per_statement: dict[str, list[float]] = defaultdict(list)
    captured: dict[str, dict[str, Any]] = {}
    failing = [o for o in range(orders) if any(layout.kind[s] in (6, 7) for s in layout.shares_of(o))]
    profile = picked[:50] + rng.sample(failing, min(10, len(failing)))
    for o in profile:
        for kind in REF_KINDS:
            for st in statements.capture(lambda o=o, kind=kind: story.order(ref_for(o, kind))):
                key = label(st["sql"])
                per_statement[key].append(raw_ms(engine, st))
                captured.setdefault(key, st)

    # the lists and the overview
    numbers = [FIRST_NUMBER + rng.randrange(orders) for _ in range(repeats)]
    some_vendor = vendor_name(rng.randrange(gen.vendors))
    list_cases: dict[str, Callable[[int], Any]] = {
        "shares(q='#<full name>')": lambda n: story.shares(q=f"#{numbers[n]}"),
        "shares(q='<3 digits>')": lambda n: story.shares(q=str(numbers[n])[:3]),
        "shares(q=<GID>)": lambda n: story.shares(q=order_gid(numbers[n] - FIRST_NUMBER)),
        "shares(state='failed')": lambda n: story.shares(state="failed"),
        "shares(state='held', vendor=V)": lambda n: story.shares(state="held", vendor=some_vendor),
        "shares(state='cancelled')": lambda n: story.shares(state="cancelled"),
        "shares(state='in_flight')": lambda n: story.shares(state="in_flight"),
        "shares() (no filter)": lambda n: story.shares(),
        "overview()": lambda n: story.overview(gen.now),
    }
    list_results: dict[str, Any] = {}
    list_statements: dict[str, list[dict[str, Any]]] = {}
    for name, fn in list_cases.items():
        times = overview_repeats if name == "overview()" else repeats
        fn(0)  # warm-up
        ms: list[float] = []
        # a slow read (a scan of every row) gets at least 3 calls, and at most ~budget_seconds
        for n in range(times):
            ms.append(_time(lambda fn=fn, n=n: fn(n))[0])
            if len(ms) >= 3 and sum(ms) > budget_seconds * 1000:
                break
        list_results[name] = summary(ms)
        list_statements[name] = []
        for st in statements.capture(lambda fn=fn: fn(0)):
            key = label(st["sql"])
            first = raw_ms(engine, st)
            ms_of = (
                first if first > 1000 else statistics.median([first, raw_ms(engine, st), raw_ms(engine, st)])
            )
            list_statements[name].append({"statement": key, "median_ms": round(ms_of, 3)})
            captured.setdefault(key, st)
        say(f"  {name}: median {list_results[name]['median_ms']} ms")
    statements.close()
    plans = [explain(engine, st) for st in captured.values()]
    page_labels = list(per_statement)
    return {
        "order_page": order_results,
        "order_page_wrong_answers": wrong,
        "order_page_statements": {k: summary(v) for k, v in per_statement.items()},
        "lists": list_results,
        "list_statements": list_statements,
        "plans": plans,
        "order_page_plans_on_index": all(not p["full_scan"] for p in plans if p["label"] in page_labels),
        "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "target_ms": TARGET_MS,
        "target_met": order_results["all refs"]["p95_ms"] < TARGET_MS,
    }


def machine(engine: Engine | None = None) -> dict[str, Any]:
    import sqlite3

    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    out: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if engine is not None and engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            out["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
            out["postgresql_shared_buffers"] = conn.execute(text("SHOW shared_buffers")).scalar_one()
    return out


# ======================================================================================================
# Report
# ======================================================================================================


def report(result: dict[str, Any]) -> str:
    m = result["measure"]
    out = [
        f"ledger {result['ledger']}: {result['rows']['ordersync_vendor_orders']:,} vendor-order rows, "
        f"{result['rows']['ordersync_merchant_orders']:,} merchant orders, "
        f"{result['rows']['ordersync_decisions']:,} decisions, {result['rows']['ordersync_shipments']:,} shipments, "
        f"{result['rows']['ordersync_alerts']:,} alerts"
        + (f" (generated in {result['generate_seconds']:.0f} s)" if result.get("generate_seconds") else ""),
        "",
        _markdown(
            ["read", "n", "median ms", "p95 ms", "max ms"],
            [[f"Story.order(<{k}>)", *_cells(v)] for k, v in m["order_page"].items()]
            + [[f"Story.{k}", *_cells(v)] for k, v in m["lists"].items()],
        ),
        "",
        "order page, per statement (run again on the DBAPI connection, rows fetched):",
        _markdown(
            ["statement", "n", "median ms", "p95 ms", "max ms"],
            [[k, *_cells(v)] for k, v in m["order_page_statements"].items()],
        ),
        "",
        "lists and overview, per statement (run again on the DBAPI connection, rows fetched; median of 3):",
        _markdown(
            ["read", "statement", "median ms"],
            [
                [name, st["statement"], f"{st['median_ms']:.2f}"]
                for name, sts in m["list_statements"].items()
                for st in sts
            ],
        ),
        "",
        f"order page p95 {m['order_page']['all refs']['p95_ms']} ms (target < {m['target_ms']:.0f} ms): "
        + ("met" if m["target_met"] else "NOT met")
        + f"; wrong answers: {m['order_page_wrong_answers']}",
        "",
        "query plans (" + ("EXPLAIN QUERY PLAN" if result["ledger"] == "sqlite" else "EXPLAIN") + "):",
    ]
    for p in m["plans"]:
        flag = []
        if p["full_scan"]:
            flag.append("FULL SCAN")
        if p.get("ordered_walk"):
            flag.append("INDEX WALK TO THE LIMIT")
        if p["sorts"]:
            flag.append("SORT")
        out.append(f"-- {p['label']}" + (f"   <-- {', '.join(flag)}" if flag else ""))
        out.extend("     " + line for line in p["plan"])
    return "\n".join(out)


def _cells(v: dict[str, Any]) -> list[Any]:
    return [v["n"], f"{v['median_ms']:.2f}", f"{v['p95_ms']:.2f}", f"{v['max_ms']:.2f}"]


def _markdown(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table(path: Path) -> str:
    """The results file as Markdown: one column per (rows, ledger)."""
    data = json.loads(path.read_text())
    keys = list(data["results"])
    reads: list[str] = []
    for k in keys:
        m = data["results"][k]["measure"]
        for name in [f"Story.order(<{x}>)" for x in m["order_page"]] + [f"Story.{x}" for x in m["lists"]]:
            if name not in reads:
                reads.append(name)

    def cell(k: str, name: str) -> str:
        m = data["results"][k]["measure"]
        v = (
            m["order_page"].get(name[len("Story.order(<") : -2])
            if name.startswith("Story.order(<")
            else m["lists"].get(name[6:])
        )
        return f"{v['median_ms']:.1f} / {v['p95_ms']:.1f}" if v else ""

    head = ["read (median / p95 ms)", *keys]
    return _markdown(head, [[name, *(cell(k, name) for k in keys)] for name in reads])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ordersync.ledger import Ledger

    reuse = bool(args.reuse or args.schema)
    if args.ledger == "sqlite":
        if args.reuse and not (args.path and Path(args.path).exists()):
            raise SystemExit("--reuse needs --path, a ledger file generated before")
        target = sqlite_target(args.path, reuse)
    else:
        target = postgres_target(args.postgres_url, args.keep, args.schema)
    try:
        ledger = Ledger(target.url)
        ledger.migrate()
        print(
            f"{'re-reading the layout of' if reuse else 'generating'} {args.rows:,} vendor-order rows "
            f"on {args.ledger} ...",
            flush=True,
        )
        gen = generate(
            ledger.engine,
            rows=args.rows,
            vendors=args.vendors,
            decisions_per_share=args.decisions_per_share,
            days=args.days,
            seed=args.seed,
            progress=lambda m: print(m, flush=True),
            write=not reuse,
        )
        rows = ledger_counts(ledger.engine)
        if rows != {t: gen.rows.get(t, 0) for t in rows}:
            raise SystemExit(f"the ledger holds {rows}, not what these arguments generate: {dict(gen.rows)}")
        print(f"timing the reads ({args.samples} orders) ...", flush=True)
        measured = measure(
            ledger.engine,
            gen,
            samples=args.samples,
            repeats=args.repeats,
            progress=lambda m: print(m, flush=True),
        )
        result = {
            "ledger": args.ledger,
            "rows": rows,
            "generated": {
                "vendors": args.vendors,
                "decisions_per_share": args.decisions_per_share,
                "days": args.days,
                "seed": args.seed,
                "states": dict(
                    sorted(
                        Counter(
                            f"{KINDS[k][0]}{'/' + KINDS[k][1] if KINDS[k][1] else ''}{' (cancelled)' if KINDS[k][2] else ''}"
                            for k in gen.layout.kind
                        ).items()
                    )
                ),
            },
            "generate_seconds": None if reuse else round(gen.seconds, 1),
            "variant": args.variant,
            "machine": machine(ledger.engine),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "measure": measured,
        }
        if args.ledger == "sqlite":
            result["ledger_file_mb"] = round(
                Path(target.url.removeprefix("sqlite:///")).stat().st_size / 1e6, 1
            )
        return result
    finally:
        target.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="vendor-order rows to generate")
    parser.add_argument("--ledger", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--vendors", type=int, default=20)
    parser.add_argument("--decisions-per-share", type=int, default=3)
    parser.add_argument("--days", type=int, default=365, help="the orders are placed over this many days")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--samples", type=int, default=200, help="orders whose page is timed")
    parser.add_argument("--repeats", type=int, default=30, help="calls per list read (the overview: 10)")
    parser.add_argument(
        "--path", help="SQLite: the ledger file (default: a temporary directory, removed after)"
    )
    parser.add_argument(
        "--postgres-url", default=POSTGRES_SERVER_URL, help="PostgreSQL: the server (a fresh schema)"
    )
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the generated schema")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="SQLite: time the ledger at --path generated before (same arguments)",
    )
    parser.add_argument(
        "--schema", help="PostgreSQL: time this schema, kept by an earlier run (same arguments)"
    )
    parser.add_argument("--variant", help="a name for this run's results (e.g. extra indexes made by hand)")
    parser.add_argument("--json", metavar="PATH", help="merge the results into this file")
    parser.add_argument("--table", metavar="JSON", help="print a results file as a Markdown table and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(Path(args.table)))
        return 0
    result = run(args)
    print()
    print(report(result))
    if args.json:
        path = Path(args.json)
        data = json.loads(path.read_text()) if path.exists() else {"results": {}}
        key = f"rows={args.rows},ledger={args.ledger}" + (f",variant={args.variant}" if args.variant else "")
        data["results"][key] = result
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwrote {path}")
    return 0 if result["measure"]["target_met"] and not result["measure"]["order_page_wrong_answers"] else 1


if __name__ == "__main__":
    sys.exit(main())
