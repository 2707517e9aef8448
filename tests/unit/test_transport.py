"""The one retry policy every store call goes through, against a real loopback server."""

from __future__ import annotations

import pytest

from ordersync.platforms.http import JsonHttp, PermanentError, RetryPolicy, TransientError
from ordersync_sandbox.base import BaseStore, Request, Response
from ordersync_sandbox.server import StoreServer


class EchoStore(BaseStore):
    """Answers every request with a JSON echo; counts what it committed."""

    platform = "echo"

    def __init__(self) -> None:
        super().__init__("echo")
        self.committed = 0

    def handle(self, request: Request) -> Response:
        if request.path == "/refuse":
            return Response.json(
                422, {"code": "rest_invalid_param", "message": "Invalid parameter(s): total"}
            )
        with self.lock:
            self.committed += 1
        return Response.json(201, {"ok": True, "n": self.committed})

    def operation_of(self, request: Request) -> str:
        return f"{request.method} {request.path}"

    def is_write(self, request: Request) -> bool:
        return request.method == "POST"


@pytest.fixture
def store():
    s = EchoStore()
    with StoreServer(s):
        yield s


def client(store, attempts=4):
    waits: list[float] = []
    http = JsonHttp(
        store.url,
        "echo store",
        timeout=1.0,
        sleep=waits.append,
        policy=RetryPolicy(max_attempts=attempts, base_seconds=0.01, cap_seconds=0.5),
    )
    return http, waits


def test_reads_retry_transient_errors_then_succeed(store):
    store.add_fault("GET /thing", "http_error", status=503, times=2)
    http, waits = client(store)
    status, _, payload = http.request("GET", "/thing")
    assert status == 201 and payload["ok"] is True
    assert len(waits) == 2 and http.calls == 3


def test_429_honours_retry_after_and_does_not_use_up_attempts(store):
    store.add_fault("POST /orders", "http_error", status=429, times=5, retry_after=0.3)
    http, waits = client(store, attempts=2)
    http.request("POST", "/orders", json_body={}, idempotent=False)
    assert waits == [0.3] * 5 and http.throttled == 5 and store.committed == 1


def test_a_create_whose_answer_was_lost_is_not_retried_blindly(store):
    store.add_fault("POST /orders", "drop_after")
    http, waits = client(store)
    with pytest.raises(TransientError) as err:
        http.request("POST", "/orders", json_body={}, idempotent=False)
    assert err.value.maybe_committed is True and store.committed == 1 and waits == []
    assert "echo store: POST /orders: connection dropped" in str(err.value)


def test_a_create_dropped_before_commit_also_reports_unknown(store):
    store.add_fault("POST /orders", "drop_before")
    http, _ = client(store)
    with pytest.raises(TransientError) as err:
        http.request("POST", "/orders", json_body={}, idempotent=False)
    assert err.value.maybe_committed is True and store.committed == 0


def test_refusals_are_permanent_and_carry_the_store_message(store):
    http, waits = client(store)
    with pytest.raises(PermanentError) as err:
        http.request("POST", "/refuse", json_body={}, idempotent=False)
    assert err.value.status == 422 and err.value.code == "rest_invalid_param"
    assert "Invalid parameter(s): total" in str(err.value) and waits == []


def test_html_error_pages_and_truncated_json_are_named(store):
    store.add_fault("GET /page", "html", status=502, times=9)
    http, _ = client(store, attempts=2)
    with pytest.raises(TransientError, match=r"HTTP 502: .*HTML page") as err:
        http.request("GET", "/page")
    assert "gave up after 2 attempts" in str(err.value)
    store.add_fault("POST /orders", "truncated")
    with pytest.raises(TransientError, match="not valid JSON") as err:
        http.request("POST", "/orders", json_body={}, idempotent=False)
    assert err.value.maybe_committed is True


def test_connection_refused_is_safe_to_retry():
    http = JsonHttp(
        "http://127.0.0.1:9",
        "nowhere",
        timeout=1.0,
        sleep=lambda s: None,
        policy=RetryPolicy(max_attempts=2, base_seconds=0.01),
    )
    with pytest.raises(TransientError, match="connection refused") as err:
        http.request("POST", "/orders", json_body={}, idempotent=False)
    assert err.value.maybe_committed is False and http.calls == 2


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=5.0, jitter=0.25)
    assert 0.75 <= policy.delay(1) <= 1.25
    assert 3.0 <= policy.delay(3) <= 5.0
    assert all(policy.delay(10) <= 5.0 for _ in range(50))
    assert policy.delay(1, retry_after=2.5) == 2.5 and policy.delay(1, retry_after=99) == 5.0
