"""The sandbox HTTP server: keep-alive, the request log, latency, faults and control endpoints."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import requests

from ordersync_sandbox.base import BaseStore, Request, Response
from ordersync_sandbox.server import Fault, StoreServer


class NoteStore(BaseStore):
    """A tiny store: POST /notes appends a note, GET /notes lists them."""

    platform = "fake"

    def __init__(self, name: str = "notes", throttle: bool = False) -> None:
        super().__init__(name)
        self.notes: list = []
        self.throttle = throttle

    def operation_of(self, request: Request) -> str:
        return f"{request.method} {request.path}"

    def is_write(self, request: Request) -> bool:
        return request.method == "POST"

    def handle(self, request: Request) -> Response:
        with self.lock:
            if request.path != "/notes":
                return Response.json(404, {"errors": "no such route"})
            if request.method == "POST":
                self.notes.append(request.json())
                return Response.json(201, {"id": len(self.notes), "note": request.json(), "pad": "x" * 40})
            return Response.json(200, {"notes": self.notes}, {"X-Count": str(len(self.notes))})

    def state(self) -> dict:
        with self.lock:
            return {"notes": list(self.notes)}

    def throttled_response(self) -> Response:
        return Response.json(200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})


@pytest.fixture
def served():
    store = NoteStore()
    server = StoreServer(store).start()
    session = requests.Session()
    try:
        yield store, session
    finally:
        session.close()
        server.stop()


def post(session: requests.Session, store: BaseStore, note: dict, **kw) -> requests.Response:
    return session.post(f"{store.url}/notes", json=note, timeout=kw.pop("timeout", 5), **kw)


def test_serves_on_loopback_and_sets_url(served):
    store, session = served
    assert store.url.startswith("http://127.0.0.1:")
    r = session.get(f"{store.url}/notes", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"notes": []}
    assert r.headers["X-Count"] == "0"
    assert r.headers["Content-Type"].startswith("application/json")
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_keep_alive_serves_several_requests_on_one_connection(served):
    store, _ = served
    port = int(store.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for i in range(3):
            conn.request(
                "POST", "/notes", body=json.dumps({"n": i}), headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            assert resp.status == 201
            assert json.loads(resp.read())["id"] == i + 1
        sock = conn.sock
        conn.request("GET", "/notes")
        assert conn.getresponse().read()
        assert conn.sock is sock  # still the same socket: the server kept the connection open
    finally:
        conn.close()


def test_request_log_entries(served):
    store, session = served
    post(session, store, {"text": "hello"}, params={"a": "1"}, headers={"X-Custom": "Yes"})
    session.get(f"{store.url}/notes", timeout=5)
    log = store.log()
    assert [e["seq"] for e in log] == [1, 2]
    first = log[0]
    assert first["method"] == "POST" and first["path"] == "/notes" and first["query"] == {"a": ["1"]}
    assert first["operation"] == "POST /notes"
    assert first["headers"]["x-custom"] == "Yes"
    assert all(name == name.lower() for name in first["headers"])
    assert first["body"] == {"text": "hello"}
    assert first["status"] == 201 and first["fault"] is None and first["write"] is True
    assert abs(first["time"] - time.time()) < 30
    assert log[1]["write"] is False and log[1]["body"] is None
    assert [e["body"] for e in store.writes()] == [{"text": "hello"}]
    store.clear_log()
    assert store.log() == [] and store.requests == []


def test_text_body_is_logged_as_text(served):
    store, session = served
    session.post(f"{store.url}/other", data=b"plain words", timeout=5)
    assert store.log()[-1]["body"] == "plain words"
    assert store.log()[-1]["status"] == 404


def test_latency_is_applied(served):
    store, session = served
    store.latency = 0.3
    started = time.monotonic()
    assert session.get(f"{store.url}/notes", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_before_gives_connection_error_and_commits_nothing(served):
    store, session = served
    store.add_fault("POST /notes", "drop_before")
    with pytest.raises(requests.exceptions.ConnectionError):
        post(session, store, {"text": "lost"})
    assert store.notes == []
    entry = store.log()[-1]
    assert entry["fault"] == "drop_before" and entry["status"] is None
    assert store.writes() == []
    # consumed: the next request goes through (the session reconnects)
    assert post(session, store, {"text": "kept"}).status_code == 201
    assert store.notes == [{"text": "kept"}]


def test_drop_after_commits_but_the_client_sees_connection_error(served):
    store, session = served
    store.add_fault("POST /notes", "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        post(session, store, {"text": "committed"})
    assert store.notes == [{"text": "committed"}]
    entry = store.log()[-1]
    assert entry["fault"] == "drop_after" and entry["status"] is None and entry["store_status"] == 201
    assert [e["body"] for e in store.writes()] == [{"text": "committed"}]


def test_timeout_holds_then_closes_without_committing(served):
    store, session = served
    store.add_fault("*", "timeout", delay=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(session, store, {"text": "slow"}, timeout=0.2)
    time.sleep(0.6)
    assert store.notes == []
    assert store.log()[-1]["fault"] == "timeout" and store.log()[-1]["status"] is None


def test_timeout_without_client_timeout_ends_in_connection_error(served):
    store, session = served
    store.add_fault("*", "timeout", delay=0.2)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{store.url}/notes", timeout=5)
    assert time.monotonic() - started >= 0.2


def test_http_error_default_500_and_429_with_retry_after(served):
    store, session = served
    store.add_fault("POST /notes", "http_error")
    r = post(session, store, {"text": "a"})
    assert r.status_code == 500
    assert "errors" in r.json()
    store.add_fault("POST /notes", "http_error", status=429, retry_after=3)
    r = post(session, store, {"text": "b"})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    store.add_fault("POST /notes", "http_error", status=429)
    assert post(session, store, {"text": "c"}).headers["Retry-After"] == "1"
    assert store.notes == []
    assert [e["status"] for e in store.log()] == [500, 429, 429]
    assert store.writes() == []


def test_http_error_uses_store_error_response_when_present(served):
    store, session = served
    store.error_response = lambda status, fault: Response.json(status, {"custom": status})  # type: ignore[attr-defined]
    store.add_fault("*", "http_error", status=503)
    r = session.get(f"{store.url}/notes", timeout=5)
    assert r.status_code == 503 and r.json() == {"custom": 503}


def test_html_error_page(served):
    store, session = served
    store.add_fault("POST /notes", "html")
    r = post(session, store, {"text": "a"})
    assert r.status_code == 502
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<html" in r.text and "502" in r.text
    assert store.notes == []


def test_truncated_commits_and_cuts_the_body_in_half(served):
    store, session = served
    store.add_fault("POST /notes", "truncated")
    r = post(session, store, {"text": "half"})
    full = json.dumps({"id": 1, "note": {"text": "half"}, "pad": "x" * 40}).encode()
    assert r.status_code == 200
    assert r.content == full[: len(full) // 2]
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()
    assert store.notes == [{"text": "half"}]
    assert len(store.writes()) == 1
    # the connection stays usable after a truncated (but correctly framed) answer
    assert session.get(f"{store.url}/notes", timeout=5).json() == {"notes": [{"text": "half"}]}


def test_error_body_200(served):
    store, session = served
    store.add_fault("POST /notes", "error_body_200")
    r = post(session, store, {"text": "a"})
    assert r.status_code == 200
    assert r.json()["errors"][0]["message"] == "Internal error"
    assert store.notes == [] and store.writes() == []


def test_throttled_delegates_to_the_store_or_answers_429(served):
    store, session = served
    store.add_fault("*", "throttled")
    r = session.get(f"{store.url}/notes", timeout=5)
    assert r.status_code == 200 and r.json()["errors"][0]["extensions"]["code"] == "THROTTLED"

    class Plain(NoteStore):
        throttled_response = None  # type: ignore[assignment]

    plain = Plain("plain")
    with StoreServer(plain):
        plain.add_fault("*", "throttled", retry_after=2)
        r = requests.get(f"{plain.url}/notes", timeout=5)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"


def test_fault_matching_and_times(served):
    store, session = served
    fault = store.add_fault("POST /notes", "http_error", times=2, status=503)
    assert isinstance(fault, Fault)
    assert session.get(f"{store.url}/notes", timeout=5).status_code == 200  # other operation: untouched
    assert post(session, store, {"n": 1}).status_code == 503
    assert post(session, store, {"n": 2}).status_code == 503
    assert store.faults == []
    assert post(session, store, {"n": 3}).status_code == 201
    store.add_fault("*", "http_error", times=-1)
    for _ in range(3):
        assert session.get(f"{store.url}/notes", timeout=5).status_code == 500
    assert len(store.faults) == 1
    store.clear_faults()
    assert session.get(f"{store.url}/notes", timeout=5).status_code == 200


def test_fault_validation():
    with pytest.raises(ValueError):
        Fault("*", "explode")
    with pytest.raises(ValueError):
        NoteStore().add_fault("*", "http_error", times=0)


def test_concurrent_faults_are_consumed_exactly(served):
    store, _ = served
    store.add_fault("POST /notes", "http_error", times=5, status=503)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        r = requests.post(f"{store.url}/notes", json={"n": i}, timeout=5)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses).count(503) == 5 and statuses.count(201) == 15
    assert len(store.notes) == 15
    assert sorted(e["seq"] for e in store.log()) == list(range(1, 21))


def test_control_endpoints_are_not_logged_or_faulted(served):
    store, session = served
    store.add_fault("*", "drop_before", times=-1)
    r = session.post(
        f"{store.url}/_sandbox/faults",
        json={"match": "GET /notes", "kind": "http_error", "status": 418},
        timeout=5,
    )
    assert r.status_code == 201 and r.json()["status"] == 418
    assert [f["kind"] for f in session.get(f"{store.url}/_sandbox/faults", timeout=5).json()] == [
        "drop_before",
        "http_error",
    ]
    assert session.delete(f"{store.url}/_sandbox/faults", timeout=5).json() == []
    assert store.faults == []
    post(session, store, {"text": "x"})
    assert session.get(f"{store.url}/_sandbox/state", timeout=5).json() == {"notes": [{"text": "x"}]}
    log = session.get(f"{store.url}/_sandbox/requests", timeout=5).json()
    assert [e["operation"] for e in log] == ["POST /notes"]
    assert session.get(f"{store.url}/_sandbox/requests", params={"since": 1}, timeout=5).json() == []
    assert session.post(f"{store.url}/_sandbox/reset-log", timeout=5).status_code == 200
    assert store.log() == []
    r = session.post(f"{store.url}/_sandbox/faults", json={"match": "*", "kind": "nope"}, timeout=5)
    assert r.status_code == 400
    r = session.post(f"{store.url}/_sandbox/latency", json={"latency": 0.01}, timeout=5)
    assert r.json() == {"latency": 0.01} and store.latency == 0.01
    assert session.get(f"{store.url}/_sandbox/nothing", timeout=5).status_code == 404


def test_state_endpoint_404_without_state():
    class Bare(NoteStore):
        def state(self) -> dict:
            raise NotImplementedError

    store = Bare()
    with StoreServer(store):
        assert requests.get(f"{store.url}/_sandbox/state", timeout=5).status_code == 404


def test_store_exception_becomes_500(served):
    store, session = served

    def boom(request: Request) -> Response:
        raise RuntimeError("kaput")

    store.handle = boom  # type: ignore[method-assign]
    r = session.get(f"{store.url}/notes", timeout=5)
    assert r.status_code == 500 and "kaput" in r.json()["errors"]


def test_stop_is_quick_closes_keep_alive_and_frees_the_port():
    store = NoteStore()
    server = StoreServer(store).start()
    session = requests.Session()
    assert session.get(f"{store.url}/notes", timeout=5).status_code == 200  # a pooled keep-alive connection
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{store.url}/notes", timeout=2)
    server.stop()  # idempotent
    session.close()


def test_explicit_port_and_restart():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = NoteStore()
    server = StoreServer(store, port=port)
    with server:
        assert store.url == f"http://127.0.0.1:{port}"
        assert server.port == port
        assert requests.get(f"{store.url}/notes", timeout=5).status_code == 200
    with server:  # the same port can be bound again right away
        assert requests.get(f"{store.url}/notes", timeout=5).status_code == 200
