"""What the webhook receiver decides about one delivery, as plain Python: the answer, and the event to record.

The Airflow side (``ordersync.airflow.webhooks``) reads the request, looks up the store behind ``conn_id`` and
records what this module returns; this module never touches the network or the ledger.

Answers (operator contract, "Event-driven sync"): 200 accepted (a repeat of one event too: the inbox keeps one
row), 401 missing or wrong signature, 404 unknown ``conn_id`` or no ``webhook_secret``, 413 body over 1 MiB, 400 a
signed body that is not JSON. WooCommerce's unsigned activation ping gets 200 and is not recorded, and so do
signed deliveries that name no order or a topic ordersync does not act on (answering an error there would make
the store retry, or WooCommerce disable the webhook, for nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ordersync.events.topics import MERCHANT_TOPICS, VENDOR_TOPICS, dag_for

MAX_BODY = 1024 * 1024  # 1 MiB: the largest body read; more is 413
# A signed delivery triggered longer ago than this is a replay (Shopify retries for hours, not days): ignored.
REPLAY_WINDOW = timedelta(days=2)
SIGNATURE_HEADER = {"shopify": "x-shopify-hmac-sha256", "woocommerce": "x-wc-webhook-signature"}
TOPIC_HEADER = {"shopify": "x-shopify-topic", "woocommerce": "x-wc-webhook-topic"}
_PING = re.compile(rb"^webhook_id=\d+$")


@dataclass(frozen=True)
class Source:
    """The store a delivery claims to come from: the connection behind ``conn_id`` in the URL."""

    conn_id: str
    role: str  # merchant | vendor
    platform: str  # shopify | woocommerce
    secret: str


@dataclass(frozen=True)
class Event:
    conn_id: str
    dedup_key: str
    dag_id: str
    topic: str
    order_id: str


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str
    event: Event | None = None


def signature(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(body)) keyed with the secret: what both platforms send."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signed(source: Source, body: bytes, headers: dict[str, str]) -> bool:
    """The delivery's signature header matches, compared in constant time."""
    given = headers.get(SIGNATURE_HEADER[source.platform], "")
    return bool(given) and hmac.compare_digest(
        given.strip().encode(), signature(source.secret, body).encode()
    )


def judge(source: Source, body: bytes, headers: dict[str, str], now: datetime | None = None) -> Verdict:
    """The answer to one delivery whose body is at most ``MAX_BODY`` bytes; ``headers`` with lower-case names."""
    if not signed(source, body, headers):
        if source.platform == "woocommerce" and _PING.match(body.strip()):
            return Verdict(200, "WooCommerce activation ping: nothing to record")
        return Verdict(401, "missing or wrong signature")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return Verdict(400, "the body is not JSON")
    if not isinstance(payload, dict):
        return Verdict(400, "the body is not a JSON object")
    topic = headers.get(TOPIC_HEADER[source.platform], "").strip()
    wanted = MERCHANT_TOPICS if source.role == "merchant" else VENDOR_TOPICS.get(source.platform, ())
    if topic not in wanted:
        return Verdict(200, f"topic {topic or '(none)'!r} is not one ordersync acts on: ignored")
    moment = now or datetime.now(UTC)
    if source.platform == "shopify":
        return _shopify(source, topic, payload, headers, body, moment)
    return _woocommerce(source, topic, payload, moment)


def _timestamp(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _shopify(
    source: Source, topic: str, payload: dict[str, Any], headers: dict[str, str], body: bytes, now: datetime
) -> Verdict:
    triggered = _timestamp(headers.get("x-shopify-triggered-at"))
    if triggered is not None and now - triggered > REPLAY_WINDOW:
        return Verdict(200, f"delivery triggered at {triggered.isoformat()}: a replay, ignored")
    if topic.startswith(("fulfillments/", "refunds/", "orders/edited")):
        # these payloads are the fulfilment, the refund, or {"order_edit": {...}}: they name their order
        inner = payload.get("order_edit") if topic == "orders/edited" else payload
        raw = inner.get("order_id") if isinstance(inner, dict) else None
        order_id = f"gid://shopify/Order/{raw}" if raw not in (None, "") else ""
    else:
        order_id = str(payload.get("admin_graphql_api_id") or "")
        if not order_id and payload.get("id") not in (None, ""):
            order_id = f"gid://shopify/Order/{payload['id']}"
    if not order_id.startswith("gid://shopify/Order/"):
        return Verdict(200, f"{topic}: no order id in the payload, ignored")
    # one id for every retry of one event; older deliveries without it fall back to the webhook id, then the body
    dedup = (
        headers.get("x-shopify-event-id")
        or headers.get("x-shopify-webhook-id")
        or "sha256:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()
    )
    return Verdict(
        200, "accepted", Event(source.conn_id, f"{topic}:{dedup}", dag_for(source.role), topic, order_id)
    )


def _woocommerce(source: Source, topic: str, payload: dict[str, Any], now: datetime) -> Verdict:
    raw = payload.get("id")
    if raw in (None, "") or not str(raw).isdigit():
        return Verdict(200, f"{topic}: no order id in the payload, ignored")
    modified = str(payload.get("date_modified_gmt") or payload.get("date_modified") or "")
    moment = _timestamp(modified + ("+00:00" if payload.get("date_modified_gmt") else ""))
    if moment is not None and now - moment > REPLAY_WINDOW:
        return Verdict(200, f"order {raw} last modified {modified}: a replay, ignored")
    return Verdict(
        200,
        "accepted",
        Event(source.conn_id, f"{topic}:{raw}@{modified}", dag_for(source.role), topic, str(raw)),
    )
