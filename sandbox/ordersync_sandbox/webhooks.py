"""Webhook delivery for the sandbox stores: one background queue and thread per store.

A store that changes state builds a :class:`Delivery` (the URL, the body and the headers the real
platform would send) and hands it to its :class:`WebhookDispatcher` (``store.webhooks``). The
dispatcher never blocks the caller: it queues the delivery, and its thread POSTs it over real HTTP,
one delivery at a time in the order they became due, records every attempt in the delivery log and
schedules the retries the platform would make. The platform rules live in the stores
(``shopify.py``, ``woocommerce.py``); this module knows only how to deliver, retry and misbehave.

Fault injection (:class:`WebhookFault`, ``store.add_webhook_fault(kind, topic="*", ...)``) acts on a
delivery when it is first queued, never on its retries:

* ``drop`` - never delivered and not retried (logged with ``fault: "drop"``, ``attempt: 0``);
* ``duplicate`` - delivered twice: a second, identical delivery (same body, signature, event id and
  Shopify webhook id) is queued right behind the first; it carries ``duplicate_of``;
* ``delay`` - first attempt ``delay`` seconds later than due (later deliveries overtake it);
* ``reorder`` - held back until ``times`` matching deliveries are held (or ``delay`` seconds after
  the first was held, when ``delay > 0``, or ``store.release_held_webhooks()``), then released in
  reverse order (``order="reverse"``, the default) or shuffled (``order="shuffle"``, ``seed``).

``topic`` matches the delivery's topic (``orders/create``, ``order.updated``; ``"*"``: any); a
WooCommerce activation ping is matched only by ``topic="ping"``. A fault applies to the next
``times`` matching deliveries (``times < 0``: every one, a reorder then releases only on ``delay`` or
``release_held_webhooks``). ``store.pause_webhooks()`` holds every delivery (new ones and due retries)
until ``store.resume_webhooks()``.

The delivery log (``store.webhook_deliveries(since=0)``) has one entry per attempt: ``seq``,
``delivery`` (the delivery's number; retries share it), ``kind`` (``event`` or ``ping``), ``topic``,
``url``, ``subscription_id``, ``event_id``, ``attempt`` (1 = first try; 0 = dropped), ``status``
(the HTTP status, or None), ``error`` (``timeout after 5 s``, a connection error, ...), ``ok``,
``final`` (no further attempt will be made), ``next_attempt_at`` (epoch seconds of the retry, or
None), ``fault``, ``duplicate_of``, ``queued_at`` / ``sent_at`` / ``finished_at`` (epoch seconds),
``duration``, ``headers`` and ``body`` as sent, and ``response_body`` (its first 2000 characters);
stores add platform keys (Shopify ``subscription_removed``, WooCommerce ``failure_count`` and
``webhook_disabled``). An entry is written when its attempt ends, so a test that saw a request
arrive reads the log after ``store.wait_for_deliveries(timeout)``, which returns True once nothing
is queued, held or in flight (False when the timeout passes first: for example while paused, or
with a retry still scheduled).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import http.client
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

WEBHOOK_FAULT_KINDS = ("drop", "duplicate", "delay", "reorder")
REORDER_ORDERS = ("reverse", "shuffle")
RESPONSE_BODY_LIMIT = 2000
NOTHING_TO_DELIVER = "nothing to deliver any more"


def sign(secret: str | bytes | None, body: bytes) -> str:
    """Base64 of the HMAC-SHA256 of ``body`` keyed with ``secret`` (how both platforms sign)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else (secret or b"")
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


@dataclass
class WebhookFault:
    """Misbehaviour for the next ``times`` deliveries whose topic matches (see the module docstring)."""

    kind: str
    topic: str = "*"
    times: int = 1
    delay: float = 0.0
    order: str = "reverse"
    seed: int | None = None
    used: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in WEBHOOK_FAULT_KINDS:
            raise ValueError(
                f"unknown webhook fault kind {self.kind!r}; expected one of {', '.join(WEBHOOK_FAULT_KINDS)}"
            )
        if self.times == 0:
            raise ValueError("times must be positive (or negative for 'every delivery')")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.order not in REORDER_ORDERS:
            raise ValueError(f"order must be one of {', '.join(REORDER_ORDERS)}")
        if self.kind == "delay" and self.delay <= 0:
            raise ValueError("a delay fault needs delay > 0 (seconds)")

    def matches(self, delivery: Delivery) -> bool:
        if delivery.kind == "ping":
            return self.topic == "ping"
        return self.topic in ("*", delivery.topic)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(eq=False)
class Delivery:
    """One delivery (one event to one subscription), attempted until it succeeds or runs out of retries.

    ``body`` is sent as is; a ``build`` callable, when given, makes ``(body, extra headers)`` at the
    first attempt instead (WooCommerce builds its payload at delivery time) or returns None when the
    delivery is moot. ``attempt_headers`` adds headers per attempt; ``on_result(delivery, entry)``
    runs after every attempt with its log entry (it may add keys to it); ``is_success`` decides what
    counts as delivered; ``retry_delays[n]`` is the wait before attempt ``n + 2``.
    """

    kind: str
    topic: str
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    subscription_id: Any = None
    event_id: str | None = None
    retry_delays: tuple[float, ...] = ()
    timeout: float = 5.0
    is_success: Callable[[int], bool] = lambda status: 200 <= status < 300
    build: Callable[[], tuple[bytes, dict[str, str]] | None] | None = None
    attempt_headers: Callable[[Delivery], dict[str, str]] | None = None
    on_result: Callable[[Delivery, dict[str, Any]], None] | None = None
    coalesce_key: Any = None
    id: int = 0
    attempt: int = 0
    fault: str | None = None
    duplicate_of: int | None = None
    queued_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None  # the last attempt's log entry

    def clone(self) -> Delivery:
        twin = Delivery(
            kind=self.kind,
            topic=self.topic,
            url=self.url,
            body=self.body,
            headers=dict(self.headers),
            subscription_id=self.subscription_id,
            event_id=self.event_id,
            retry_delays=self.retry_delays,
            timeout=self.timeout,
            is_success=self.is_success,
            build=self.build,
            attempt_headers=self.attempt_headers,
            on_result=self.on_result,
        )
        return twin


def _same_as(original: Delivery) -> Callable[[], tuple[bytes, dict[str, str]] | None]:
    """A duplicate's build: the body and headers its original was sent with (built when it was)."""

    def build() -> tuple[bytes, dict[str, str]] | None:
        if original.attempt == 0 and original.build is not None:  # the original is not built yet
            return original.build()
        if original.result is not None and original.result.get("error") == NOTHING_TO_DELIVER:
            return None
        return original.body, dict(original.headers)

    return build


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str | None, bytes]:
    """POST without following redirects: ``(status, error, response body)``; status None on failure."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, f"cannot deliver to {url!r}", b""
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read(64 * 1024)
        return resp.status, None, data
    except TimeoutError:  # socket.timeout is TimeoutError
        return None, f"timeout after {timeout:g} s", b""
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}", b""
    finally:
        conn.close()


class WebhookDispatcher:
    """The delivery queue, thread, faults and log of one store (``store.webhooks``).

    The thread starts with the first delivery and runs until :meth:`close` (``Sandbox.stop`` closes
    every store's dispatcher; a later delivery starts it again, queued deliveries are kept).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.clock: Callable[[], float] = time.monotonic
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._coalesce: dict[Any, Delivery] = {}
        self._held: list[tuple[WebhookFault, list[Delivery], float]] = []
        self._inflight = 0
        self._paused = False
        self._generation = 0  # a thread runs while its generation is current
        self._thread: threading.Thread | None = None
        self._faults: list[WebhookFault] = []
        self._log: list[dict[str, Any]] = []
        self._seq = 0

    # --- submitting ---

    def submit(self, delivery: Delivery) -> Delivery:
        """Queue ``delivery`` (faults apply now); returns it, or the queued one it was merged into."""
        with self._cond:
            if delivery.coalesce_key is not None:
                pending = self._coalesce.get(delivery.coalesce_key)
                if pending is not None:
                    return pending
            delivery.id = next(self._ids)
            delivery.queued_at = time.time()
            fault = self._take_fault(delivery)
            now = self.clock()
            if fault is None:
                self._push(delivery, now)
            elif fault.kind == "drop":
                delivery.fault = "drop"
                entry = self._entry(delivery, attempt=0)
                entry.update(error="dropped by an injected fault", final=True, finished_at=time.time())
                self._append(entry)
                delivery.result = entry
                delivery.done.set()
            elif fault.kind == "delay":
                delivery.fault = "delay"
                self._push(delivery, now + fault.delay)
            elif fault.kind == "duplicate":
                delivery.fault = "duplicate"
                twin = delivery.clone()
                if delivery.build is not None:
                    twin.build = _same_as(delivery)
                twin.id = next(self._ids)
                twin.queued_at = delivery.queued_at
                twin.fault = "duplicate"
                twin.duplicate_of = delivery.id
                self._push(delivery, now)
                self._push(twin, now)
            else:  # reorder
                delivery.fault = "reorder"
                self._hold(fault, delivery, now)
            if delivery.coalesce_key is not None and not delivery.done.is_set():
                self._coalesce[delivery.coalesce_key] = delivery
            self._ensure_thread()
            self._cond.notify_all()
            return delivery

    def _take_fault(self, delivery: Delivery) -> WebhookFault | None:
        for fault in self._faults:
            if fault.matches(delivery):
                fault.used += 1
                if fault.times > 0 and fault.used >= fault.times:
                    self._faults.remove(fault)
                return fault
        return None

    def _push(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._order), delivery))

    def _hold(self, fault: WebhookFault, delivery: Delivery, now: float) -> None:
        for held_fault, group, _since in self._held:
            if held_fault is fault:
                group.append(delivery)
                break
        else:
            self._held.append((fault, [delivery], now))
        group = next(g for f, g, _ in self._held if f is fault)
        if fault.times > 0 and len(group) >= fault.times:
            self._release(fault)

    def _release(self, fault: WebhookFault) -> None:
        for i, (held_fault, group, _since) in enumerate(self._held):
            if held_fault is fault:
                del self._held[i]
                ordered = list(reversed(group))
                if fault.order == "shuffle":
                    ordered = list(group)
                    random.Random(fault.seed).shuffle(ordered)
                now = self.clock()
                for delivery in ordered:
                    self._push(delivery, now)
                self._cond.notify_all()
                return

    def release_held(self) -> int:
        """Release every held (reordered) delivery now, each group in its fault's order; the count."""
        with self._cond:
            count = sum(len(g) for _, g, _ in self._held)
            for held_fault, _group, _since in list(self._held):
                self._release(held_fault)
            return count

    # --- control ---

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            if self._queue:
                self._ensure_thread()
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def add_fault(self, kind: str, topic: str = "*", times: int = 1, **kwargs: Any) -> WebhookFault:
        fault = WebhookFault(kind=kind, topic=topic, times=times, **kwargs)
        with self._cond:
            self._faults.append(fault)
        return fault

    def faults(self) -> list[WebhookFault]:
        with self._cond:
            return list(self._faults)

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(e) for e in self._log if e["seq"] > since]

    def clear_log(self) -> None:
        with self._cond:
            self._log.clear()

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "paused": self._paused,
                "queued": len(self._queue),
                "held": sum(len(g) for _, g, _ in self._held),
                "in_flight": self._inflight,
                "faults": [f.to_dict() for f in self._faults],
                "logged": len(self._log),
            }

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._held and not self._inflight

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, held or in flight; False if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._held or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
            return True

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread after the attempt in flight (queued deliveries stay queued)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._generation += 1
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def start(self) -> None:
        """Start the thread again after :meth:`close` if deliveries are waiting."""
        with self._cond:
            if self._queue or self._held:
                self._ensure_thread()

    # --- the thread ---

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._generation += 1
            self._thread = threading.Thread(
                target=self._run, args=(self._generation,), name=f"webhooks-{self.name}", daemon=True
            )
            self._thread.start()

    def _next(self, generation: int) -> Delivery | None:
        """The next due delivery (waiting for it), or None once this thread is closed."""
        with self._cond:
            while True:
                if generation != self._generation:
                    return None
                now = self.clock()
                wait: float | None = None
                for held_fault, _group, since in list(self._held):
                    if held_fault.delay > 0:
                        if now >= since + held_fault.delay:
                            self._release(held_fault)
                        else:
                            left = since + held_fault.delay - now
                            wait = left if wait is None else min(wait, left)
                if not self._paused and self._queue:
                    due = self._queue[0][0]
                    if due <= now:
                        _, _, delivery = heapq.heappop(self._queue)
                        if self._coalesce.get(delivery.coalesce_key) is delivery:
                            del self._coalesce[delivery.coalesce_key]
                        self._inflight += 1
                        return delivery
                    wait = due - now if wait is None else min(wait, due - now)
                self._cond.wait(wait)

    def _run(self, generation: int) -> None:
        while True:
            delivery = self._next(generation)
            if delivery is None:
                return
            try:
                self._attempt(delivery)
            except Exception as exc:  # a sandbox bug: log it, never kill the thread
                entry = self._entry(delivery, attempt=delivery.attempt)
                entry.update(error=f"sandbox error: {type(exc).__name__}: {exc}", final=True)
                with self._cond:
                    self._append(entry)
                delivery.done.set()
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        if delivery.build is not None and delivery.attempt == 1:
            built = delivery.build()
            if built is None:
                entry = self._entry(delivery, attempt=delivery.attempt)
                entry.update(error=NOTHING_TO_DELIVER, final=True, finished_at=time.time())
                with self._cond:
                    self._append(entry)
                delivery.result = entry
                delivery.done.set()
                return
            delivery.body, extra = built
            delivery.headers.update(extra)
        headers = dict(delivery.headers)
        if delivery.attempt_headers is not None:
            headers.update(delivery.attempt_headers(delivery))
        entry = self._entry(delivery, attempt=delivery.attempt)
        entry["headers"] = headers
        entry["sent_at"] = time.time()
        started = time.monotonic()
        status, error, answer = post(delivery.url, delivery.body, headers, delivery.timeout)
        entry["duration"] = round(time.monotonic() - started, 4)
        entry["finished_at"] = time.time()
        entry["status"] = status
        entry["error"] = error
        entry["response_body"] = answer.decode("utf-8", errors="replace")[:RESPONSE_BODY_LIMIT]
        entry["ok"] = status is not None and delivery.is_success(status)
        retry_in: float | None = None
        if not entry["ok"] and delivery.attempt <= len(delivery.retry_delays):
            retry_in = float(delivery.retry_delays[delivery.attempt - 1])
        entry["final"] = retry_in is None
        entry["next_attempt_at"] = entry["finished_at"] + retry_in if retry_in is not None else None
        if delivery.on_result is not None:
            delivery.on_result(delivery, entry)
        with self._cond:
            self._append(entry)
            delivery.result = entry
            if retry_in is not None:
                self._push(delivery, self.clock() + retry_in)
            else:
                delivery.done.set()

    def _entry(self, delivery: Delivery, attempt: int) -> dict[str, Any]:
        return {
            "seq": 0,
            "delivery": delivery.id,
            "kind": delivery.kind,
            "topic": delivery.topic,
            "url": delivery.url,
            "subscription_id": delivery.subscription_id,
            "event_id": delivery.event_id,
            "attempt": attempt,
            "status": None,
            "error": None,
            "ok": False,
            "final": False,
            "next_attempt_at": None,
            "fault": delivery.fault,
            "duplicate_of": delivery.duplicate_of,
            "queued_at": delivery.queued_at,
            "sent_at": None,
            "finished_at": None,
            "duration": None,
            "headers": dict(delivery.headers),
            "body": delivery.body.decode("utf-8", errors="replace"),
            "response_body": None,
        }

    def _append(self, entry: dict[str, Any]) -> None:
        self._seq += 1
        entry["seq"] = self._seq
        self._log.append(entry)
