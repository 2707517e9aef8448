"""The contract between the sandbox HTTP server and the stores it serves.

A store is plain in-memory state behind one ``handle(request) -> Response``
method. The server (``server.py``) owns sockets, latency, the request log and
fault injection; stores own their API semantics. Every store also has a webhook
dispatcher (``store.webhooks``, ``webhooks.py``): the store decides what to
deliver, the dispatcher delivers it in the background; the helpers below give
tests its log, faults, pause and an "all delivered" wait.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .webhooks import WebhookDispatcher, WebhookFault


@dataclass
class Request:
    method: str
    path: str  # URL path without the query string
    query: dict[str, list[str]]  # parsed query string
    headers: dict[str, str]  # header names lower-cased
    body: bytes = b""

    @classmethod
    def build(cls, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Request:
        path, _, qs = raw_path.partition("?")
        return cls(
            method.upper(),
            path,
            parse_qs(qs, keep_blank_values=True),
            {k.lower(): v for k, v in headers.items()},
            body,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON; raises ValueError with a readable message."""
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"request body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json; charset=utf-8"}
        h.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), h)

    def payload(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


class BaseStore:
    """State and API of one store. Subclasses implement ``handle`` and ``operation_of``."""

    platform: str = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.url: str = ""  # set by the server once it listens
        self.latency: float = 0.0  # seconds slept before each request (server applies it)
        self.requests: list[dict[str, Any]] = []  # request log, appended by the server
        self.faults: list[Any] = []  # pending faults, consumed by the server
        self.meta_lock = threading.Lock()  # guards ``requests``, ``faults`` and ``_seq`` (not store state)
        self._seq = 0
        self.webhooks = WebhookDispatcher(name)  # webhook queue, thread, faults and delivery log

    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def operation_of(self, request: Request) -> str:  # pragma: no cover - abstract
        """A short label for logs and fault matching (Shopify: root field, e.g. ``orderCreate``;
        WooCommerce: method and route, e.g. ``POST /orders``)."""
        raise NotImplementedError

    def is_write(self, request: Request) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- sandbox helpers (fault injection and the request log; see server.py) ---

    def add_fault(self, match: str = "*", kind: str = "http_error", times: int = 1, **kwargs: Any) -> Any:
        """Queue a :class:`ordersync_sandbox.server.Fault` for the next ``times`` requests whose
        operation label equals ``match`` (``"*"`` = any). ``times < 0`` means every request."""
        from .server import Fault  # server.py imports this module

        fault = Fault(match=match, kind=kind, times=times, **kwargs)
        with self.meta_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.meta_lock:
            self.faults.clear()

    def log(self) -> list[dict[str, Any]]:
        """A copy of the request log."""
        with self.meta_lock:
            return list(self.requests)

    def clear_log(self) -> None:
        with self.meta_lock:
            self.requests.clear()

    def writes(self) -> list[dict[str, Any]]:
        """Logged write requests the store committed: ``handle`` ran (no fault, or a ``drop_after`` /
        ``truncated`` fault) and answered 2xx, whether or not the client received that answer."""
        return [
            e
            for e in self.log()
            if e.get("write") and e.get("store_status") is not None and 200 <= e["store_status"] < 300
        ]

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot of the store's data (``GET /_sandbox/state``)."""
        raise NotImplementedError

    # --- webhooks (see webhooks.py; subscriptions are platform-specific) ---

    def subscribe(self, topic: str, url: str, **options: Any) -> dict[str, Any]:  # pragma: no cover
        """Register a webhook subscription from Python, as the platform's API would."""
        raise NotImplementedError(f"{type(self).__name__} has no webhook subscriptions")

    def unsubscribe(self, ident: Any) -> bool:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} has no webhook subscriptions")

    def subscriptions(self) -> list[dict[str, Any]]:
        """Copies of the store's webhook subscriptions (platform-shaped)."""
        return []

    def webhook_deliveries(self, since: int = 0) -> list[dict[str, Any]]:
        """The delivery log: one entry per attempt (``GET /_sandbox/webhook-deliveries``)."""
        return self.webhooks.log(since)

    def clear_webhook_deliveries(self) -> None:
        self.webhooks.clear_log()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """True once no delivery is queued, held or in flight; False when ``timeout`` passes first."""
        return self.webhooks.wait_idle(timeout)

    def pause_webhooks(self) -> None:
        """Hold every delivery (new ones and due retries) until :meth:`resume_webhooks`."""
        self.webhooks.pause()

    def resume_webhooks(self) -> None:
        self.webhooks.resume()

    def add_webhook_fault(self, kind: str, topic: str = "*", times: int = 1, **kwargs: Any) -> WebhookFault:
        """Queue a :class:`~ordersync_sandbox.webhooks.WebhookFault` (drop, duplicate, delay, reorder)."""
        return self.webhooks.add_fault(kind, topic=topic, times=times, **kwargs)

    def clear_webhook_faults(self) -> None:
        self.webhooks.clear_faults()

    def release_held_webhooks(self) -> int:
        """Release the deliveries a reorder fault holds; how many there were."""
        return self.webhooks.release_held()
