"""Shopify's GraphQL Admin API (2026-10) over HTTP: one client for the merchant store and Shopify vendors.

Cost-aware: every response's ``extensions.cost.throttleStatus`` is read; a
query is held back while the bucket cannot pay for it, and ``THROTTLED`` is
waited out (for up to ``max_throttle_waits`` x ``cap_seconds``, 10 minutes by
default).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from ordersync.platforms.http import JsonHttp, OverHttp, PermanentError, RetryPolicy, TransientError
from ordersync.platforms.shopify.documents import API_VERSION, document

log = logging.getLogger(__name__)


class ShopifyGraphQL(OverHttp):
    """One shop's GraphQL endpoint, with cost-based throttling.

    Safe to share between threads (a vendor's orders are pushed concurrently): before a request is sent its
    expected cost (the requested cost of the last call of the same document) is reserved against the bucket
    as last reported by ``throttleStatus``, refilled at ``restoreRate`` since then, minus what requests still
    in flight have reserved. A request that the bucket cannot pay for waits until it can, so concurrent
    requests pace themselves instead of drawing ``THROTTLED``.
    """

    def __init__(
        self,
        host: str,
        token: str,
        label: str,
        *,
        api_version: str = API_VERSION,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.label = label
        self.http = JsonHttp(
            f"{host.rstrip('/')}/admin/api/{api_version}",
            label,
            timeout=timeout,
            policy=policy,
            sleep=sleep,
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
        )
        self.sleep = sleep
        self.available: float | None = None  # points in the bucket at ``_known_at`` (last throttleStatus)
        self.maximum: float | None = None
        self.restore_rate: float | None = None
        self.last_cost: dict[str, float] = {}
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # notified when an answer's bucket status is recorded
        self._known_at = 0.0
        self._in_flight = 0.0  # points reserved by requests sent and not yet answered
        self._skew = 0.0  # time an injected ``sleep`` did not really wait (tests)

    def _clock(self) -> float:
        return time.monotonic() + self._skew

    def _remember_cost(self, payload: dict[str, Any], name: str) -> float | None:
        cost = (payload.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        with self._lock:
            if "currentlyAvailable" in status:
                self.available = float(status["currentlyAvailable"])
                self.maximum = float(status.get("maximumAvailable") or 0) or None
                self.restore_rate = float(status.get("restoreRate") or 50.0)
                self._known_at = self._clock()
            requested = cost.get("requestedQueryCost")
            if requested is not None:
                self.last_cost[name] = float(requested)
        return float(requested) if requested is not None else None

    def _estimate(self) -> float:
        """Points the bucket holds now, by our books (caller holds the lock)."""
        assert self.available is not None and self.restore_rate
        refilled = self.available + max(0.0, self._clock() - self._known_at) * self.restore_rate
        if self.maximum:
            refilled = min(self.maximum, refilled)
        return refilled - self._in_flight

    def _reserve(self, name: str) -> float:
        """Wait until the bucket can pay for ``name`` (by the last known cost), then reserve that; returns
        the points reserved (0 while the cost or the bucket is not known yet).

        A query must find its *requested* cost in the bucket but is charged its actual cost (``MerchantFulfillment
        State`` asks for about 640 points and costs about 25): the refund comes back with the answer of every
        request in flight, so a waiting request wakes when one is answered, not only when the restore rate
        would have refilled the bucket."""
        told = False
        while True:
            with self._lock:
                expected = self.last_cost.get(name)
                if expected is None or self.available is None or not self.restore_rate:
                    return 0.0
                estimate = self._estimate()
                if expected <= estimate or expected > (self.maximum or float("inf")):
                    self._in_flight += expected
                    return expected
                wait = (expected - estimate) / self.restore_rate
                if not told:
                    log.info(
                        "%s: %s needs %.0f points, %.0f available; waiting up to %.2fs for the bucket",
                        self.label,
                        name,
                        expected,
                        estimate,
                        wait,
                    )
                    told = True
                if self.sleep is time.sleep:  # a real clock: woken early by an answer's refund
                    self._freed.wait(timeout=wait)
                    continue
            started = time.monotonic()
            self.sleep(wait)
            slept = time.monotonic() - started
            if slept < wait:
                with self._lock:
                    self._skew += wait - slept

    def _release(self, reserved: float) -> None:
        with self._lock:
            if reserved:
                self._in_flight = max(0.0, self._in_flight - reserved)
            self._freed.notify_all()  # the answer's throttleStatus (with its refund) is known now

    def execute(self, name: str, variables: dict[str, Any], *, mutation: bool = False) -> dict[str, Any]:
        """Run ``graphql/<name>.graphql``; returns ``data`` or raises a StoreError."""
        body = {"query": document(name), "variables": variables, "operationName": name}
        waits = 0
        waited = 0.0
        while True:
            reserved = self._reserve(name)
            try:
                _, _, payload = self.http.request(
                    "POST", "/graphql.json", json_body=body, idempotent=not mutation, operation=name
                )
                if not isinstance(payload, dict):
                    raise TransientError(
                        f"{self.label}: {name}: the store answered with no JSON object",
                        maybe_committed=mutation,
                    )
                requested = self._remember_cost(payload, name)
            finally:
                self._release(reserved)
            errors = payload.get("errors")
            if not errors:
                if "data" not in payload or payload["data"] is None:
                    raise TransientError(
                        f"{self.label}: {name}: the answer holds neither data nor errors",
                        maybe_committed=mutation,
                    )
                return payload["data"]
            if isinstance(errors, str):
                raise PermanentError(f"{self.label}: {name}: {errors}")
            codes = {((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            if "THROTTLED" in codes:
                # Waited out, not counted against the attempts: other clients of the same shop (the other
                # tasks of a run share the merchant's bucket) can keep a dear query waiting for a while.
                # Give up only after as long as max_throttle_waits full back-offs would take (10 minutes
                # by default). The jitter keeps clients that were throttled together from retrying together.
                self.http.count_throttled()
                waits += 1
                policy = self.http.policy
                if waited >= policy.max_throttle_waits * policy.cap_seconds:
                    raise TransientError(
                        f"{self.label}: {name}: still THROTTLED after {waits - 1} waits ({waited:.0f}s)"
                    )
                with self._lock:
                    rate = self.restore_rate or 50.0
                    have = self._estimate() if self.available is not None and self.restore_rate else 0.0
                needed = (requested or self.last_cost.get(name) or 50.0) - have
                wait = min(max(needed / rate, 0.05), policy.cap_seconds) * random.uniform(1.0, 1.5)
                log.info(
                    "%s: %s THROTTLED; waiting %.2fs for the cost bucket to refill", self.label, name, wait
                )
                self.sleep(wait)
                waited += wait
                continue
            if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}:
                raise TransientError(f"{self.label}: {name}: {messages}", maybe_committed=mutation)
            raise PermanentError(
                f"{self.label}: {name}: {messages}", code=",".join(sorted(c for c in codes if c))
            )
