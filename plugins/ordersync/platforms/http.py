"""JSON over HTTP with one retry policy for every store.

Transient failures (5xx, 429, timeouts, dropped connections) are retried with
capped exponential backoff and jitter, honouring ``Retry-After``. A request
that is not idempotent (an order create) is retried only when the store
certainly did not act on it (429, connection refused); when the outcome is
unknown the caller gets :class:`TransientError` with ``maybe_committed=True``
and must look the object up before trying again.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ordersync.platforms.base import PermanentError, StoreError, TransientError

__all__ = ["JsonHttp", "OverHttp", "RetryPolicy", "PermanentError", "StoreError", "TransientError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    jitter: float = 0.25  # +/- fraction of the delay
    max_throttle_waits: int = 20  # THROTTLED / 429 waits per request, on top of max_attempts
    lookup_delay_seconds: float = 5.0  # before searching for an order whose create had an unknown outcome

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """``ORDERSYNC_RETRY_ATTEMPTS``, ``ORDERSYNC_RETRY_BASE_SECONDS``, ``ORDERSYNC_RETRY_CAP_SECONDS``,
        ``ORDERSYNC_LOOKUP_DELAY_SECONDS``."""
        return cls(
            max_attempts=int(os.environ.get("ORDERSYNC_RETRY_ATTEMPTS", cls.max_attempts)),
            base_seconds=float(os.environ.get("ORDERSYNC_RETRY_BASE_SECONDS", cls.base_seconds)),
            cap_seconds=float(os.environ.get("ORDERSYNC_RETRY_CAP_SECONDS", cls.cap_seconds)),
            lookup_delay_seconds=float(
                os.environ.get("ORDERSYNC_LOOKUP_DELAY_SECONDS", cls.lookup_delay_seconds)
            ),
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_seconds)
        raw = min(self.cap_seconds, self.base_seconds * (2 ** (attempt - 1)))
        return min(self.cap_seconds, max(0.0, raw * (1 + random.uniform(-self.jitter, self.jitter))))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class JsonHttp:
    """A small JSON client for one store. ``label`` names the store in every error."""

    def __init__(
        self,
        base_url: str,
        label: str,
        *,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        self.timeout = timeout
        self.policy = policy or RetryPolicy.from_env()
        self.sleep = sleep
        self.session = requests.Session()
        # pool: one keep-alive connection per concurrent request (the platform's concurrency, see the registry)
        pool = max(1, pool_size)
        self.session.mount("http://", HTTPAdapter(max_retries=0, pool_maxsize=pool))
        self.session.mount("https://", HTTPAdapter(max_retries=0, pool_maxsize=pool))
        self.auth = auth
        if auth:
            self.session.auth = auth
        self.session.headers.update({"Accept": "application/json", "User-Agent": "ordersync/0.1"})
        self.session.headers.update(headers or {})
        self.calls = 0  # requests sent, for the benchmark and the summary
        self.throttled = 0  # 429 / THROTTLED answers received
        self._count_lock = threading.Lock()  # one client may serve several threads

    def count_throttled(self) -> None:
        with self._count_lock:
            self.throttled += 1

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        operation: str | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """Send and decode JSON. Returns (status, headers, payload) for 2xx; raises StoreError otherwise.
        ``operation`` names the request in errors (a GraphQL operation rather than ``POST /graphql.json``)."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE")
        url = f"{self.base_url}{path}"
        what = f"{self.label}: {operation or f'{method.upper()} {path}'}"
        attempt = 0
        throttle_waits = 0
        while True:
            attempt += 1
            with self._count_lock:
                self.calls += 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json_body, timeout=self.timeout
                )
            except requests.exceptions.ConnectTimeout as exc:
                error: TransientError = TransientError(f"{what}: could not connect ({type(exc).__name__})")
            except requests.exceptions.ConnectionError as exc:
                refused = "NewConnectionError" in repr(exc) or "Connection refused" in str(exc)
                error = TransientError(
                    f"{what}: connection {'refused' if refused else 'dropped before the store answered'}",
                    maybe_committed=not refused,
                )
            except requests.exceptions.Timeout:
                error = TransientError(f"{what}: no answer within {self.timeout:g}s", maybe_committed=True)
            else:
                status = response.status_code
                if status == 429:
                    self.count_throttled()
                    throttle_waits += 1
                    if throttle_waits > self.policy.max_throttle_waits:
                        raise TransientError(
                            f"{what}: still rate limited (429) after {throttle_waits - 1} waits"
                        )
                    wait = self.policy.delay(throttle_waits, _retry_after(response))
                    log.info("%s: rate limited (429), waiting %.2fs", what, wait)
                    self.sleep(wait)
                    attempt -= 1
                    continue
                payload, decode_error = self._decode(response)
                if 200 <= status < 300 and decode_error is None:
                    return status, dict(response.headers), payload
                if status >= 500 or (200 <= status < 300 and decode_error):
                    detail = decode_error or self._message(payload, response)
                    error = TransientError(f"{what}: HTTP {status}: {detail}", maybe_committed=True)
                else:
                    code = payload.get("code") if isinstance(payload, dict) else None
                    raise PermanentError(
                        f"{what}: HTTP {status}: {self._message(payload, response)}", status=status, code=code
                    )
            if (error.maybe_committed and not idempotent) or attempt >= self.policy.max_attempts:
                if attempt >= self.policy.max_attempts and not (error.maybe_committed and not idempotent):
                    error = TransientError(
                        f"{error} (gave up after {attempt} attempts)", error.maybe_committed
                    )
                raise error
            wait = self.policy.delay(attempt)
            log.info("%s; retry %d/%d in %.2fs", error, attempt, self.policy.max_attempts - 1, wait)
            self.sleep(wait)

    @staticmethod
    def _decode(response: requests.Response) -> tuple[Any, str | None]:
        if not response.content:
            return None, None
        try:
            return response.json(), None
        except ValueError:
            kind = (
                "an HTML page" if "<html" in response.text[:500].lower() else "a body that is not valid JSON"
            )
            return None, f"the store answered with {kind}: {_snippet(response.text)!r}"

    @staticmethod
    def _message(payload: Any, response: requests.Response) -> str:
        if isinstance(payload, dict):
            if "message" in payload:
                return f"{payload.get('code', 'error')}: {payload['message']}"
            if "errors" in payload:
                errors = payload["errors"]
                if isinstance(errors, list):
                    return "; ".join(
                        str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
                    )
                return str(errors)
        if payload is None and response.content:
            return _snippet(response.text)
        return json.dumps(payload)[:300] if payload is not None else response.reason or "no body"


class OverHttp:
    """For clients built on one :class:`JsonHttp` (``self.http``): call counts and closing."""

    http: JsonHttp

    @property
    def calls(self) -> int:
        return self.http.calls

    @property
    def throttled(self) -> int:
        return self.http.throttled

    def close(self) -> None:
        self.http.close()
