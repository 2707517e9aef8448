"""The webhook receiver: ``POST /ordersync/webhooks/{conn_id}`` inside the Airflow API server.

Mounted by ordersync's Airflow plugin (``ordersync.airflow.plugin``) as part of its FastAPI app. It needs no
Airflow login: each delivery proves itself with the store's HMAC signature, keyed with the connection's extra
``webhook_secret``. For each delivery it

1. finds the store behind ``conn_id`` (``ordersync_merchant`` or a vendor's ``conn_id`` in ``ordersync_vendors``;
   looked up at most every ``SOURCE_TTL`` seconds, so a flood of requests costs no database reads),
2. reads at most 1 MiB of body (413 beyond), lets :func:`ordersync.events.receive.judge` decide the answer,
3. for an accepted event: commits it to the ledger's inbox (a repeat finds its row) and only then answers 200;
   a new event also records an Airflow asset event for the DAG it wakes (``order_sync`` or ``tracking_sync``),
   whose event run then starts within a second or two. A ledger that cannot be written answers 503 (the store
   retries); an asset event that cannot be recorded is logged and left to the scheduled runs: the inbox keeps it.

It never calls a store and never logs a body, a signature or a secret. This module is imported only when the
API server builds the plugin's app (FastAPI is imported here, not by the plugin module every process loads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ordersync.airflow.dagkit import EVENT_ASSETS
from ordersync.events.receive import MAX_BODY, Event, Source, judge
from ordersync.events.topics import MERCHANT_CONN_ID

if TYPE_CHECKING:
    from ordersync.ledger import Ledger

log = logging.getLogger("ordersync.webhooks")

SOURCE_TTL = 10.0  # seconds a conn_id's lookup (known or not) is reused


class _Sources:
    """conn_id -> :class:`Source` (or None: answered 404), each looked up at most once per ``SOURCE_TTL``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vendors: tuple[float, dict[str, str]] = (0.0, {})
        self._cache: dict[str, tuple[float, Source | None]] = {}

    def clear(self) -> None:
        with self._lock:
            self._vendors = (0.0, {})
            self._cache.clear()

    def _vendor_platforms(self) -> dict[str, str]:
        stamp, known = self._vendors
        if time.monotonic() - stamp < SOURCE_TTL:
            return known
        from airflow.models.variable import Variable

        from ordersync.settings import SettingsError, parse_vendors

        raw = Variable.get("ordersync_vendors", default_var=None)
        try:
            vendors = parse_vendors(raw if raw is None or isinstance(raw, str) else json.dumps(raw))
            known = {v.conn_id: v.platform for v in vendors}
        except SettingsError as exc:  # the runs report it; the receiver only knows the merchant then
            log.warning(
                "ordersync_vendors cannot be read (%s): only the merchant's webhooks are accepted", exc
            )
            known = {}
        self._vendors = (time.monotonic(), known)
        return known

    def get(self, conn_id: str) -> Source | None:
        with self._lock:
            hit = self._cache.get(conn_id)
            if hit is not None and time.monotonic() - hit[0] < SOURCE_TTL:
                return hit[1]
            if conn_id == MERCHANT_CONN_ID:
                role, platform = "merchant", "shopify"
            else:
                platform = self._vendor_platforms().get(conn_id, "")
                role = "vendor"
            source = self._lookup(conn_id, role, platform) if platform else None
            if len(self._cache) > 1000:  # random conn_ids in a flood must not grow memory
                self._cache.clear()
            self._cache[conn_id] = (time.monotonic(), source)
            return source

    @staticmethod
    def _lookup(conn_id: str, role: str, platform: str) -> Source | None:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models.connection import Connection

        try:
            conn = Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            return None
        secret = (conn.extra_dejson or {}).get("webhook_secret")
        if not isinstance(secret, str) or not secret:
            return None
        return Source(conn_id=conn_id, role=role, platform=platform, secret=secret)


SOURCES = _Sources()
_ledger_lock = threading.Lock()
_ledger: Ledger | None = None


def ledger() -> Ledger:
    """The ledger the runs use (connection ``ordersync_ledger``, else the default SQLite file), migrated once."""
    global _ledger
    with _ledger_lock:
        if _ledger is None:
            from airflow.exceptions import AirflowNotFoundException
            from airflow.models.connection import Connection

            from ordersync.airflow.config import LEDGER_CONN_ID, ledger_url_from
            from ordersync.ledger import Ledger

            try:
                conn = Connection.get_connection_from_secrets(LEDGER_CONN_ID)
            except AirflowNotFoundException:
                conn = None
            candidate = Ledger(ledger_url_from(conn))
            candidate.migrate()  # the inbox must exist before the first run has made it
            _ledger = candidate
        return _ledger


def record(event: Event) -> bool:
    """Commit the event to the inbox; a new one also wakes its DAG. False: a repeat of a recorded event."""
    new = ledger().inbox.record(event.conn_id, event.dedup_key, event.dag_id, event.topic, event.order_id)
    if new:
        wake(event.dag_id, {"conn_id": event.conn_id, "topic": event.topic, "order_id": event.order_id})
    return new


def wake(dag_id: str, extra: dict[str, Any]) -> None:
    """An asset event for the DAG's event asset: the scheduler starts (or, while a run goes, queues) its run."""
    try:
        from airflow.assets.manager import AssetManager
        from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
        from airflow.utils.session import create_session

        name, uri = EVENT_ASSETS[dag_id]
        with create_session() as session:
            made = AssetManager.register_asset_change(
                asset=SerializedAssetUniqueKey(name=name, uri=uri), extra=extra, session=session
            )
        if made is None:
            log.warning(
                "asset %s is not known to Airflow yet (DAG %s not parsed?): the next run takes it",
                name,
                dag_id,
            )
    except Exception as exc:  # the event is in the inbox: the scheduled run reconciles it
        log.warning("could not start %s for a webhook event (%s): the next run takes it", dag_id, exc)


def router() -> APIRouter:
    api = APIRouter()

    def answer(status: int, message: str) -> JSONResponse:
        return JSONResponse({"status": status, "detail": message}, status_code=status)

    @api.post("/webhooks/{conn_id}", summary="Receive a store webhook (signed; no Airflow login)")
    async def receive(conn_id: str, request: Request) -> JSONResponse:
        source = await run_in_threadpool(SOURCES.get, conn_id)
        if source is None:
            return answer(
                404, f"no webhook receiver for connection {conn_id!r} (unknown, or no webhook_secret)"
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return answer(413, "body over 1 MiB")
        body = await _read_body(request, MAX_BODY)
        if body is None:
            return answer(413, "body over 1 MiB")
        headers = {k.lower(): v for k, v in request.headers.items()}
        verdict = judge(source, body, headers)
        topic = headers.get("x-shopify-topic") or headers.get("x-wc-webhook-topic") or "-"
        if verdict.event is None:
            log.info("webhook %s %s: %d %s", conn_id, topic, verdict.status, verdict.message)
            return answer(verdict.status, verdict.message)
        try:
            new = await run_in_threadpool(record, verdict.event)
        except Exception as exc:
            log.error(
                "webhook %s %s: the ledger could not record it (%s): answered 503",
                conn_id,
                topic,
                type(exc).__name__,
            )
            return answer(503, "the sync ledger is unavailable; deliver again later")
        what = "accepted" if new else "repeat of a recorded event"
        log.info("webhook %s %s order %s: %s", conn_id, topic, verdict.event.order_id, what)
        return answer(200, what)

    return api


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
