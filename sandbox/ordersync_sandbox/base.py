"""The contract between the sandbox HTTP server and the stores it serves.

A store is plain in-memory state behind one ``handle(request) -> Response``
method. The server (``server.py``) owns sockets, latency, the request log and
fault injection; stores own their API semantics.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


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
