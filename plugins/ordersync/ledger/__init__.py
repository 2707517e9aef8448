"""The sync ledger: the source of truth for what was pushed where, and why.

SQLAlchemy Core over SQLite (default, a file in ``$AIRFLOW_HOME``) or any URL
given by connection ``ordersync_ledger`` (PostgreSQL in production). The
tables are in :mod:`ordersync.ledger.schema`; Alembic creates and upgrades them
(:mod:`ordersync.ledger.migrate`, revisions in ``migrations/versions``).

Exactly once: a (merchant order, vendor) row is written ``in_flight`` before
the vendor create and ``pushed`` after it. A row found ``in_flight`` or
``unknown`` means an earlier attempt may have created the vendor order, so the
vendor store is searched by the link-back marker before creating again.

Tracking (``ordersync_shipments``): one row per vendor shipment (Shopify fulfilment GID or
WooCommerce tracking_id), written ``in_flight`` before the merchant write and ``written`` after it.
A row left ``in_flight`` means the merchant may have made the fulfilment: its fulfilments are
looked up by tracking number before anything is written again.

Alerts: decisions carry the ``operation`` (create, update, cancel, tracking) and ``subject`` (the
shipment for tracking) so a run's final failures can be told from failures a retry mended;
``ordersync_alerts`` holds the notices a task raised for its run (line items changed, cancel refused, a
vendor that could not be read); ``ordersync_alert_deliveries`` records each run's alert per channel, so
a retried summary task sends it at most once more (at least once, never per retry).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine

from ordersync.ledger.inbox import Inbox
from ordersync.ledger.refunds import Refunds
from ordersync.ledger.run_shipments import RunShipments
from ordersync.ledger.schema import (
    TABLES,
    alert_deliveries,
    alerts_table,
    decisions,
    merchant_orders,
    meta_table,
    metadata,
    run_orders,
    run_shipments,
    shipments,
    sku_map,
    vendor_orders,
    watermarks,
)
from ordersync.ledger.schema import refunds as refunds_table
from ordersync.models import Mapping, MerchantOrder

__all__ = [
    "Ledger",
    "LedgerUnavailable",
    "Pair",
    "safe_url",
    "decisions",
    "meta_table",
    "metadata",
    "run_orders",
    "shipments",
    "sku_map",
    "vendor_orders",
    "watermarks",
    "alerts_table",
    "alert_deliveries",
    "TABLES",
]

log = logging.getLogger("ordersync")

OPEN_STATES = ("queued", "failed", "unknown", "in_flight")


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def watermark_after(newest: datetime | None, read_started: datetime) -> datetime | None:
    """The watermark a complete read may store: the newest ``updatedAt`` it saw, but never later than the second
    the read began. A store can stamp an order in the future of its own clock (two writes in one second, the
    second stamped a second later) or index an update after a later one: an order updated before the read
    began but stamped earlier than the newest one seen would otherwise fall behind the watermark for good.
    Reads are inclusive (``updated_at:>=``), so what the read already saw after that second is read again,
    and decided ``unchanged``."""
    if newest is None:
        return None
    return min(newest, read_started.astimezone(UTC).replace(microsecond=0))


@dataclass(frozen=True)
class Pair:
    merchant_order_id: str
    vendor: str
    merchant_order_name: str
    state: str
    hold_kind: str | None
    vendor_order_id: str | None
    vendor_order_name: str | None
    attempts: int
    first_attempt_at: datetime | None
    last_error: str | None
    fingerprint: str | None = None
    synced_fields: str | None = None
    line_fingerprint: str | None = None
    manual_fingerprint: str | None = None
    cancel_state: str | None = None
    reason: str | None = (
        None  # the reason last recorded (a re-read hold that says the same is not said again)
    )


# The two statements every vendor order create runs (prebuilt: SQLAlchemy's statement building was most of a
# create's ledger CPU).
_KEY = (vendor_orders.c.merchant_order_id == bindparam("oid")) & (vendor_orders.c.vendor == bindparam("v"))
_BEGIN = (
    update(vendor_orders)
    .where(_KEY, vendor_orders.c.state != "pushed")
    .values(
        state="in_flight",
        marker=bindparam("marker"),
        attempts=func.coalesce(vendor_orders.c.attempts, 0) + 1,
        first_attempt_at=func.coalesce(vendor_orders.c.first_attempt_at, bindparam("first")),
        last_attempt_at=bindparam("at"),
        run_id=bindparam("run"),
        hold_kind=None,
        updated_at=bindparam("updated"),
    )
)
_PUSHED = (
    update(vendor_orders)
    .where(_KEY)
    .values(
        state="pushed",
        merchant_order_name=bindparam("name"),
        vendor_order_id=bindparam("vid"),
        vendor_order_name=bindparam("vname"),
        pushed_at=bindparam("at"),
        reason=bindparam("reason"),
        last_error=None,
        hold_kind=None,
        fingerprint=bindparam("fp"),
        synced_fields=bindparam("sf"),
        line_fingerprint=bindparam("lf"),
        updated_at=bindparam("updated"),
    )
)
_SYNC_KEYS = {"fingerprint", "synced_fields", "line_fingerprint"}
PG_POOL_SIZE = 8  # a vendor task's concurrent pushes (the Shopify concurrency) each hold a connection briefly

_engines: dict[str, Engine] = {}


def safe_url(url: str) -> str:
    """The ledger's URL as it may be logged: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def _connect_patiently(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """A database server that is restarting (or failing over) refuses connections for a few seconds: keep
    trying for ``ORDERSYNC_LEDGER_CONNECT_SECONDS`` (default 30) before the step fails."""
    patience = float(os.environ.get("ORDERSYNC_LEDGER_CONNECT_SECONDS", "30"))
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "the sync ledger's database refused a connection (%s); trying again in %.1fs",
                str(exc).strip().splitlines()[0][:200],
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _engine(url: str) -> Engine:
    if url not in _engines:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 60}, pool_pre_ping=True)

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # concurrent mapped tasks share one file
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=4)
            event.listen(engine, "do_connect", _connect_patiently)
        _engines[url] = engine
    return _engines[url]


class LedgerUnavailable(RuntimeError):
    """The ledger's database did not answer: transient, the task is retried (not a configuration error)."""


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        # ``pushed`` rows of creates that succeeded, written with the next in_flight row (one commit per create
        # instead of two) or by flush_pushed(); see begin_attempt
        self._pushed_later: list[dict[str, Any]] = []
        self._pushed_lock = threading.Lock()

    @property
    def inbox(self) -> Inbox:
        """The webhook inbox: accepted store events until a run took them (:mod:`ordersync.ledger.inbox`)."""
        return Inbox(self.engine)

    @property
    def refunds(self) -> Refunds:
        """Each merchant refund's part on each vendor order (:mod:`ordersync.ledger.refunds`)."""
        return Refunds(self.engine)

    @property
    def run_shipments(self) -> RunShipments:
        """tracking_sync's run scratch: vendor orders staged for its one merchant writer
        (:mod:`ordersync.ledger.run_shipments`)."""
        return RunShipments(self.engine)

    # -- schema -------------------------------------------------------------------------------------------------
    def migrate(self) -> str:
        """Create or upgrade the ledger tables (Alembic, see :mod:`ordersync.ledger.migrate`); returns the
        schema revision."""
        from ordersync.ledger.migrate import upgrade

        return upgrade(self.engine)

    def schema_version(self) -> str | None:
        """The ledger's schema revision, or None when it has none yet."""
        from ordersync.ledger.migrate import current

        with self.engine.connect() as conn:
            return current(conn)

    def check(self) -> None:
        """Raise :class:`LedgerUnavailable` naming the database (never its password) when it does not answer."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except (DBAPIError, OSError) as exc:
            first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[:1]
            raise LedgerUnavailable(
                f"the sync ledger at {safe_url(self.url)} cannot be reached: "
                f"{first[0] if first else type(exc).__name__}"
            ) from None

    # -- watermarks ----------------------------------------------------------------------------------------------
    def watermark(self, name: str) -> datetime | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(watermarks.c.value).where(watermarks.c.name == name)).first()
        return datetime.fromisoformat(row[0]) if row else None

    def set_watermark(self, name: str, value: datetime) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(watermarks)
                .where(watermarks.c.name == name)
                .values(value=value.isoformat(), updated_at=now())
            ).rowcount
            if not done:
                conn.execute(insert(watermarks).values(name=name, value=value.isoformat(), updated_at=now()))

    def watermark_once(self, name: str, value: datetime) -> datetime:
        """The stored value of ``name``; when there is none yet, ``value`` is stored and returned. Two runs racing
        to be first both get the one value that was stored."""
        from sqlalchemy.exc import IntegrityError

        stored = self.watermark(name)
        if stored is not None:
            return stored
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(watermarks).values(name=name, value=value.isoformat(), updated_at=now()))
        except IntegrityError:
            pass
        return self.watermark(name) or value

    # -- SKU mappings ----------------------------------------------------------------------------------------------
    def cached_mappings(
        self, vendor: str, skus: Iterable[str], max_age: timedelta | None = None
    ) -> dict[str, Mapping]:
        """Cached mappings of ``skus``; with ``max_age``, only those looked up that recently (an older one is left
        out, so the caller looks the SKU up again: a product archived, or a second live duplicate, is noticed)."""
        wanted = list(dict.fromkeys(skus))
        found: dict[str, Mapping] = {}
        oldest = now() - max_age if max_age is not None else None
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = select(sku_map).where(
                    sku_map.c.vendor == vendor, sku_map.c.sku.in_(wanted[start : start + 500])
                )
                if oldest is not None:
                    query = query.where(sku_map.c.refreshed_at >= oldest)
                rows = conn.execute(query)
                for row in rows:
                    found[row.sku] = Mapping(
                        sku=row.sku, product_id=row.product_id, variant_id=row.variant_id
                    )
        return found

    def forget_mappings(self, vendor: str, skus: Iterable[str]) -> None:
        """Drop cached mappings the vendor store no longer honours; the next run looks the SKUs up again."""
        wanted = list(dict.fromkeys(skus))
        if wanted:
            with self.engine.begin() as conn:
                conn.execute(delete(sku_map).where(sku_map.c.vendor == vendor, sku_map.c.sku.in_(wanted)))

    def store_mappings(self, vendor: str, mappings: Iterable[Mapping]) -> None:
        with self.engine.begin() as conn:
            for m in mappings:
                conn.execute(delete(sku_map).where(sku_map.c.vendor == vendor, sku_map.c.sku == m.sku))
                conn.execute(
                    insert(sku_map).values(
                        vendor=vendor,
                        sku=m.sku,
                        product_id=m.product_id,
                        variant_id=m.variant_id,
                        refreshed_at=now(),
                    )
                )

    # -- (merchant order, vendor) pairs ---------------------------------------------------------------------------
    def pairs(self, order_ids: Iterable[str], vendor: str | None = None) -> dict[tuple[str, str], Pair]:
        ids = list(dict.fromkeys(order_ids))
        out: dict[tuple[str, str], Pair] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = select(vendor_orders).where(
                    vendor_orders.c.merchant_order_id.in_(ids[start : start + 500])
                )
                if vendor is not None:
                    query = query.where(vendor_orders.c.vendor == vendor)
                for row in conn.execute(query):
                    out[(row.merchant_order_id, row.vendor)] = self._pair(row)
        return out

    @staticmethod
    def _pair(row: Any) -> Pair:
        return Pair(
            row.merchant_order_id,
            row.vendor,
            row.merchant_order_name,
            row.state,
            row.hold_kind,
            row.vendor_order_id,
            row.vendor_order_name,
            row.attempts or 0,
            _aware(row.first_attempt_at),
            row.last_error,
            row.fingerprint,
            row.synced_fields,
            row.line_fingerprint,
            row.manual_fingerprint,
            row.cancel_state,
            row.reason,
        )

    def open_order_ids(self, vendors: Iterable[str] | None = None) -> list[str]:
        """Merchant orders with a pair to retry: failed, outcome unknown, held for a missing mapping, for the push
        delay or as risky (those can go without any change to the order), or a pushed pair whose last edit or
        cancellation failed, or with a refund whose outcome at the vendor is unknown (``in_flight``: looked up
        there first). A refund the vendor refused is retried when the order is read again (it changed, or a
        manual run names it)."""
        refunds_open = (
            select(refunds_table.c.merchant_order_id)
            .join(
                vendor_orders,
                (vendor_orders.c.merchant_order_id == refunds_table.c.merchant_order_id)
                & (vendor_orders.c.vendor == refunds_table.c.vendor),
            )
            .where(
                refunds_table.c.state == "in_flight",
                # a vendor order cancelled since takes no more refunds: its open row is left as it is
                vendor_orders.c.cancel_state.is_(None) | (vendor_orders.c.cancel_state == "refused"),
            )
        )
        if vendors:
            refunds_open = refunds_open.where(refunds_table.c.vendor.in_(list(vendors)))
        query = select(vendor_orders.c.merchant_order_id).where(
            (vendor_orders.c.state.in_(OPEN_STATES))
            | (
                (vendor_orders.c.state == "held")
                & vendor_orders.c.hold_kind.in_(("unmapped", "ambiguous", "delay", "risk"))
            )
            | ((vendor_orders.c.state == "pushed") & vendor_orders.c.last_error.is_not(None))
        )
        if vendors:
            query = query.where(vendor_orders.c.vendor.in_(list(vendors)))
        with self.engine.connect() as conn:
            found = [r[0] for r in conn.execute(query.order_by(vendor_orders.c.merchant_order_id))]
            found += sorted(r[0] for r in conn.execute(refunds_open))
            return list(dict.fromkeys(found))

    def _write_pair(
        self, order_id: str, vendor: str, order_name: str, values: dict[str, Any], protect_pushed: bool = True
    ) -> bool:
        """Insert or update one pair; never touches a pushed pair unless ``protect_pushed`` is False."""
        values = {**values, "updated_at": now()}
        key = (vendor_orders.c.merchant_order_id == order_id) & (vendor_orders.c.vendor == vendor)
        with self.engine.begin() as conn:
            row = conn.execute(select(vendor_orders.c.state).where(key)).first()
            if row is None:
                conn.execute(
                    insert(vendor_orders).values(
                        merchant_order_id=order_id,
                        vendor=vendor,
                        merchant_order_name=order_name,
                        attempts=0,
                        **values,
                    )
                )
                return True
            if protect_pushed and row.state == "pushed":
                return False
            conn.execute(update(vendor_orders).where(key).values(merchant_order_name=order_name, **values))
            return True

    def mark_not_pushed(
        self,
        order_id: str,
        vendor: str,
        order_name: str,
        state: str,
        reason: str,
        hold_kind: str | None = None,
        run_id: str | None = None,
        unmapped_skus: Iterable[str] = (),
    ) -> None:
        """Record a held or skipped pair (a pushed pair stays pushed); ``unmapped_skus``: what a pair held as
        unmapped waits on (the Order Sync page counts the orders waiting on each SKU)."""
        skus = sorted(set(unmapped_skus))
        self._write_pair(
            order_id,
            vendor,
            order_name,
            {
                "state": state,
                "hold_kind": hold_kind,
                "reason": reason,
                "run_id": run_id,
                "unmapped_skus": json.dumps(skus) if skus else None,
            },
        )

    def begin_attempt(self, order_id: str, vendor: str, order_name: str, marker: str, run_id: str) -> Pair:
        """Mark the pair in flight, committed before the vendor call.

        The same transaction writes the ``pushed`` rows of creates that succeeded since (``mark_pushed(...,
        later=True)``): each of those pairs was committed ``in_flight`` before its create, so writing ``pushed``
        a moment later changes nothing a crash could break; a crash in between leaves them ``in_flight``, and
        the next run finds those vendor orders by marker instead of creating them again."""
        moment = now()
        with self._pushed_lock:
            later, self._pushed_later = self._pushed_later, []
        try:
            with self.engine.begin() as conn:
                if later:
                    conn.execute(_PUSHED, later)
                began = conn.execute(
                    _BEGIN,
                    {
                        "oid": order_id,
                        "v": vendor,
                        "marker": marker,
                        "first": moment,
                        "at": moment,
                        "updated": moment,
                        "run": run_id,
                    },
                ).rowcount
                key = (vendor_orders.c.merchant_order_id == order_id) & (vendor_orders.c.vendor == vendor)
                if not began:
                    if conn.execute(select(vendor_orders.c.state).where(key)).first() is not None:
                        raise RuntimeError(f"{order_name} is already pushed to {vendor}")
                    conn.execute(
                        insert(vendor_orders).values(
                            merchant_order_id=order_id,
                            vendor=vendor,
                            merchant_order_name=order_name,
                            state="in_flight",
                            marker=marker,
                            attempts=1,
                            first_attempt_at=moment,
                            last_attempt_at=moment,
                            run_id=run_id,
                            updated_at=moment,
                        )
                    )
                return self._pair(conn.execute(select(vendor_orders).where(key)).one())
        except BaseException:
            with self._pushed_lock:
                self._pushed_later[:0] = later
            raise

    def flush_pushed(self) -> None:
        """Write the ``pushed`` rows still waiting for the next in_flight row (end of a vendor's push)."""
        with self._pushed_lock:
            later, self._pushed_later = self._pushed_later, []
        if not later:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(_PUSHED, later)
        except BaseException:
            with self._pushed_lock:
                self._pushed_later[:0] = later
            raise

    def mark_pushed(
        self,
        order_id: str,
        vendor: str,
        order_name: str,
        vendor_order_id: str,
        vendor_order_name: str,
        reason: str,
        sync: dict[str, Any] | None = None,
        later: bool = False,
    ) -> None:
        """``sync``: fingerprint, synced_fields and line_fingerprint of what the vendor order was created with.

        ``later``: the pair is ``in_flight`` (begin_attempt) and its create succeeded; the row is written with the
        next begin_attempt or by flush_pushed(), whichever comes first."""
        if sync is not None and set(sync) == _SYNC_KEYS:
            moment = now()
            params = {
                "oid": order_id,
                "v": vendor,
                "name": order_name,
                "vid": vendor_order_id,
                "vname": vendor_order_name,
                "at": moment,
                "updated": moment,
                "reason": reason,
                "fp": sync["fingerprint"],
                "sf": sync["synced_fields"],
                "lf": sync["line_fingerprint"],
            }
            if later:
                with self._pushed_lock:
                    self._pushed_later.append(params)
                return
            with self.engine.begin() as conn:
                if conn.execute(_PUSHED, params).rowcount:
                    return
        self._write_pair(
            order_id,
            vendor,
            order_name,
            {
                "state": "pushed",
                "vendor_order_id": vendor_order_id,
                "vendor_order_name": vendor_order_name,
                "pushed_at": now(),
                "reason": reason,
                "last_error": None,
                "hold_kind": None,
                **(sync or {}),
            },
            protect_pushed=False,
        )

    def update_pushed(
        self,
        order_id: str,
        vendor: str,
        with_alerts: tuple[str, list[dict[str, str]]] | None = None,
        **values: Any,
    ) -> None:
        """Lifecycle bookkeeping on a pushed pair: fingerprints, manual flags, cancellation, errors.
        ``with_alerts`` (run id, alert rows as :meth:`queue_alerts` takes them) queues those alerts in the
        same transaction: a notice and the record that it was raised are written together or not at all."""
        allowed = {
            "fingerprint",
            "synced_fields",
            "manual_fingerprint",
            "cancel_state",
            "cancelled_at",
            "last_error",
            "reason",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not lifecycle columns: {sorted(unknown)}")
        key = (vendor_orders.c.merchant_order_id == order_id) & (vendor_orders.c.vendor == vendor)
        with self.engine.begin() as conn:
            conn.execute(
                update(vendor_orders)
                .where(key, vendor_orders.c.state == "pushed")
                .values(updated_at=now(), **values)
            )
            if with_alerts and with_alerts[1]:
                run_id, rows = with_alerts
                conn.execute(
                    insert(alerts_table), [{**r, "run_id": run_id, "created_at": now()} for r in rows]
                )

    def mark_failed(
        self, order_id: str, vendor: str, order_name: str, error: str, maybe_committed: bool
    ) -> None:
        """``unknown`` when the vendor may have created the order (look it up before retrying)."""
        self._write_pair(
            order_id,
            vendor,
            order_name,
            {"state": "unknown" if maybe_committed else "failed", "last_error": error, "reason": error},
        )

    # -- tracking_sync: pushed vendor orders and their shipments ------------------------------------------------
    def pushed_for_vendor(
        self,
        vendor: str,
        merchant_order_ids: Iterable[str] | None = None,
        vendor_order_ids: Iterable[str] | None = None,
    ) -> dict[str, Pair]:
        """Vendor orders ordersync created for ``vendor`` (vendor_order_id -> pair), optionally only those of the
        given merchant orders, or only those with the given ids at the vendor."""
        query = select(vendor_orders).where(
            vendor_orders.c.vendor == vendor,
            vendor_orders.c.state == "pushed",
            vendor_orders.c.vendor_order_id.is_not(None),
        )
        out: dict[str, Pair] = {}
        with self.engine.connect() as conn:
            column, wanted = (
                (vendor_orders.c.merchant_order_id, merchant_order_ids)
                if vendor_order_ids is None
                else (vendor_orders.c.vendor_order_id, vendor_order_ids)
            )
            if wanted is None:
                rows = list(conn.execute(query))
            else:
                ids = list(dict.fromkeys(wanted))
                rows = []
                for start in range(0, len(ids), 500):
                    rows += list(conn.execute(query.where(column.in_(ids[start : start + 500]))))
        for row in rows:
            out[str(row.vendor_order_id)] = self._pair(row)
        return out

    def shipments(self, vendor: str, vendor_order_id: str) -> dict[str, dict[str, Any]]:
        """Rows of one vendor order's shipments, by vendor_shipment_key."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(shipments).where(
                    shipments.c.vendor == vendor, shipments.c.vendor_order_id == vendor_order_id
                )
            )
            return {
                r.vendor_shipment_key: {**dict(r._mapping), "first_attempt_at": _aware(r.first_attempt_at)}
                for r in rows
            }

    def merchant_fulfillments_recorded(self, merchant_order_id: str) -> set[str]:
        """Merchant fulfilment ids any shipment row already owns (so a lookup never claims one twice)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(shipments.c.merchant_fulfillment_id).where(
                    shipments.c.merchant_order_id == merchant_order_id,
                    shipments.c.merchant_fulfillment_id.is_not(None),
                )
            )
            return {r[0] for r in rows}

    def _write_shipment(
        self, vendor: str, vendor_order_id: str, key: str, values: dict[str, Any], attempt: bool = False
    ) -> None:
        where = (
            (shipments.c.vendor == vendor)
            & (shipments.c.vendor_order_id == vendor_order_id)
            & (shipments.c.vendor_shipment_key == key)
        )
        moment = now()
        with self.engine.begin() as conn:
            row = conn.execute(select(shipments).where(where)).first()
            if row is None:
                conn.execute(
                    insert(shipments).values(
                        vendor=vendor,
                        vendor_order_id=vendor_order_id,
                        vendor_shipment_key=key,
                        updated_at=moment,
                        attempts=1 if attempt else 0,
                        first_attempt_at=moment if attempt else None,
                        **values,
                    )
                )
            else:
                extra = (
                    {"attempts": (row.attempts or 0) + 1, "first_attempt_at": row.first_attempt_at or moment}
                    if attempt
                    else {}
                )
                conn.execute(update(shipments).where(where).values(updated_at=moment, **extra, **values))

    def begin_shipment(
        self,
        vendor: str,
        vendor_order_id: str,
        key: str,
        merchant_order_id: str,
        merchant_order_name: str,
        run_id: str,
        merchant_fulfillment_id: str | None = None,
        tracking: str | None = None,
    ) -> None:
        """Committed before the merchant write: the outcome is unknown until ``shipment_written``."""
        values: dict[str, Any] = {
            "merchant_order_id": merchant_order_id,
            "merchant_order_name": merchant_order_name,
            "state": "in_flight",
            "run_id": run_id,
            "error": None,
        }
        if tracking is not None and merchant_fulfillment_id is None:
            values["tracking"] = tracking
        if merchant_fulfillment_id:
            values["merchant_fulfillment_id"] = merchant_fulfillment_id
        self._write_shipment(vendor, vendor_order_id, key, values, attempt=True)

    def shipment_written(
        self,
        vendor: str,
        vendor_order_id: str,
        key: str,
        merchant_order_id: str,
        merchant_order_name: str,
        merchant_fulfillment_id: str,
        fingerprint: str,
        tracking: str,
    ) -> None:
        self._write_shipment(
            vendor,
            vendor_order_id,
            key,
            {
                "merchant_order_id": merchant_order_id,
                "merchant_order_name": merchant_order_name,
                "merchant_fulfillment_id": merchant_fulfillment_id,
                "fingerprint": fingerprint,
                "tracking": tracking,
                "state": "written",
                "error": None,
                "written_at": now(),
            },
        )

    def shipment_failed(
        self, vendor: str, vendor_order_id: str, key: str, error: str, maybe_written: bool
    ) -> None:
        """``maybe_written``: the merchant may have committed; the row stays ``in_flight`` (looked up next time).
        A shipment written before keeps ``written`` (its fulfilment exists; only the update failed)."""
        where = (
            (shipments.c.vendor == vendor)
            & (shipments.c.vendor_order_id == vendor_order_id)
            & (shipments.c.vendor_shipment_key == key)
        )
        with self.engine.begin() as conn:
            row = conn.execute(select(shipments.c.state, shipments.c.fingerprint).where(where)).first()
            if row is None:
                return
            state = row.state
            if state == "in_flight" and not maybe_written:
                state = "failed"
            conn.execute(update(shipments).where(where).values(state=state, error=error, updated_at=now()))

    # -- decisions ------------------------------------------------------------------------------------------------
    def record_decisions(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        moment = now()
        with self.engine.begin() as conn:
            conn.execute(insert(decisions), [{**r, "run_id": run_id, "created_at": moment} for r in rows])

    def queue_alerts(self, run_id: str, rows: list[dict[str, str]]) -> None:
        """Notices a task raised; the run's summary sends them with the run's failures, in one alert."""
        if not rows:
            return
        moment = now()
        with self.engine.begin() as conn:
            conn.execute(insert(alerts_table), [{**r, "run_id": run_id, "created_at": moment} for r in rows])

    def queued_alerts(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alerts_table).where(alerts_table.c.run_id == run_id).order_by(alerts_table.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def alert_delivered(self, run_id: str) -> set[str]:
        """The channels this run's alert already reached."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_deliveries.c.channel).where(alert_deliveries.c.run_id == run_id))
            return {r[0] for r in rows}

    def mark_alert_delivered(self, run_id: str, channel: str, items: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(alert_deliveries).values(run_id=run_id, channel=channel, items=items, sent_at=now())
            )

    def decisions_for_run(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(decisions).where(decisions.c.run_id == run_id).order_by(decisions.c.id)
            )
            return [dict(r._mapping) for r in rows]

    # -- run scratch: merchant orders fetched by this run ---------------------------------------------------------
    def stage_orders(self, run_id: str, orders: Iterable[MerchantOrder], remember: bool = True) -> int:
        """Stage ``orders`` in the run scratch; ``remember``: also record them for the Order Sync page (not in a
        dry run, which leaves the ledger as it found it)."""
        moment = now()
        orders = list(orders)
        rows = [
            {
                "run_id": run_id,
                "merchant_order_id": o.id,
                "merchant_order_name": o.name,
                "updated_at": o.updated_at,
                "payload": o.model_dump_json(),
                "staged_at": moment,
            }
            for o in orders
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(run_orders).where(
                        run_orders.c.run_id == run_id,
                        run_orders.c.merchant_order_id.in_([r["merchant_order_id"] for r in rows]),
                    )
                )
                conn.execute(insert(run_orders), rows)
                if remember:
                    self._remember_orders(conn, orders, moment)
        return len(rows)

    def _remember_orders(self, conn: Any, orders: list[MerchantOrder], moment: datetime) -> None:
        """Upsert what the Order Sync page shows of each order (``ordersync_merchant_orders``), in the staging
        transaction: no extra commit per order."""
        rows = []
        for o in orders:
            who = o.customer
            name = " ".join(p for p in ((who.first_name, who.last_name) if who else ()) if p) or None
            rows.append(
                {
                    "merchant_order_id": o.id,
                    "merchant_order_name": o.name,
                    "legacy_id": o.legacy_id,
                    "financial_status": o.financial_status,
                    "fulfillment_status": o.fulfillment_status,
                    "buyer_name": name,
                    "buyer_email": o.email or (who.email if who else None),
                    "buyer_phone": o.phone or (who.phone if who else None),
                    "created_at": o.created_at,
                    "updated_at": o.updated_at,
                    "seen_at": moment,
                }
            )
        from sqlalchemy.dialects import postgresql, sqlite

        upsert: Any = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = upsert(merchant_orders)
        statement = statement.on_conflict_do_update(
            index_elements=[merchant_orders.c.merchant_order_id],
            set_={c: statement.excluded[c] for c in rows[0] if c != "merchant_order_id"},
        )
        conn.execute(statement, rows)

    def staged_order_ids(self, run_id: str) -> list[str]:
        """Ids of the orders staged for ``run_id``, oldest change first (to read them back in chunks)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(run_orders.c.merchant_order_id)
                .where(run_orders.c.run_id == run_id)
                .order_by(run_orders.c.updated_at, run_orders.c.merchant_order_id)
            )
            return [r[0] for r in rows]

    def staged_orders(self, run_id: str, order_ids: Iterable[str] | None = None) -> list[MerchantOrder]:
        query = select(run_orders.c.payload).where(run_orders.c.run_id == run_id)
        out: list[MerchantOrder] = []
        with self.engine.connect() as conn:
            if order_ids is None:
                rows = conn.execute(query.order_by(run_orders.c.updated_at, run_orders.c.merchant_order_id))
                out = [MerchantOrder.model_validate_json(r[0]) for r in rows]
            else:
                ids = list(order_ids)
                for start in range(0, len(ids), 500):
                    rows = conn.execute(
                        query.where(run_orders.c.merchant_order_id.in_(ids[start : start + 500]))
                    )
                    out.extend(MerchantOrder.model_validate_json(r[0]) for r in rows)
        return out

    def clear_run(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(run_orders).where(run_orders.c.run_id == run_id))

    def purge_stale_runs(
        self, older_than: timedelta = timedelta(days=2), alerts_older_than: timedelta = timedelta(days=30)
    ) -> int:
        self.inbox.purge()
        self.run_shipments.purge(older_than)
        with self.engine.begin() as conn:
            conn.execute(delete(alerts_table).where(alerts_table.c.created_at < now() - alerts_older_than))
            conn.execute(
                delete(alert_deliveries).where(alert_deliveries.c.sent_at < now() - alerts_older_than)
            )
            return conn.execute(
                delete(run_orders).where(run_orders.c.staged_at < now() - older_than)
            ).rowcount

    # -- inspection (tests, the demo, troubleshooting) ---------------------------------------------------------
    def dump(self, include_scratch: bool = False) -> dict[str, list[dict[str, Any]]]:
        from sqlalchemy import inspect

        found = inspect(self.engine)
        present = set(found.get_table_names())  # a ledger not migrated yet lacks newer tables and columns
        scratch = (run_orders, run_shipments)
        tables = [t for t in TABLES if (include_scratch or t not in scratch) and t.name in present]
        with self.engine.connect() as conn:
            dumped = {}
            for t in tables:
                have = {c["name"] for c in found.get_columns(t.name)}
                columns = [c for c in t.columns if c.name in have]
                dumped[t.name] = [
                    json.loads(json.dumps(dict(r._mapping), default=str))
                    for r in conn.execute(select(*columns))
                ]
            return dumped

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
            }
