"""The sandbox tests' webhook receiver on loopback and their sandbox of stores."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ordersync_sandbox import Sandbox

# --- a webhook receiver on loopback ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers with the queued ``(status, delay)`` pairs, then ``default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[tuple[int, float]] = []
        self.default: tuple[int, float] = (200, 0.0)
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.received.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                        )
                    )
                    status, delay = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.cond.notify_all()
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        with self.cond:
            self.answers.extend((s, delay) for s in statuses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} deliveries, got {len(self.received)}"
                self.cond.wait(left)
            return list(self.received)

    def topics(self) -> list[str]:
        """The topic of each delivery, in order of arrival."""
        with self.cond:
            return [
                r.headers.get("x-shopify-topic") or r.headers.get("x-wc-webhook-topic") or ""
                for r in self.received
            ]

    def of(self, topic: str) -> list[Any]:
        """The JSON bodies of the deliveries of ``topic``."""
        return [r.json() if r.body else None for r in self.of_topic(topic)]

    def clear(self) -> None:
        with self.cond:
            self.received.clear()

    def of_topic(self, topic: str) -> list[Received]:
        with self.cond:
            return [
                r
                for r in self.received
                if topic in (r.headers.get("x-shopify-topic"), r.headers.get("x-wc-webhook-topic"))
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb
