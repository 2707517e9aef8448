"""Real HTTP on loopback for one store: latency, a request log and injected faults.

``StoreServer(store).start()`` listens on ``127.0.0.1`` (a free port unless one is given) and
sets ``store.url``. Every request is built into a :class:`~ordersync_sandbox.base.Request`,
delayed by ``store.latency``, matched against the store's pending :class:`Fault` s by its
operation label, handed to ``store.handle`` (no global lock: stores lock themselves) and logged in
``store.requests``.

Paths under ``/_sandbox/`` are control endpoints (no auth, never delayed, faulted or logged):

* ``GET /_sandbox/requests`` - the request log (``?since=SEQ`` for entries after a sequence number)
* ``GET /_sandbox/state`` - ``store.state()``
* ``GET|POST|DELETE /_sandbox/faults`` - list, add (JSON body of :class:`Fault` fields), clear
* ``POST /_sandbox/reset-log`` - empty the request log
* ``POST /_sandbox/latency`` - ``{"latency": seconds}``

Webhooks (``webhooks.py``; what each platform delivers is in ``shopify.py`` / ``woocommerce.py``):

* ``GET /_sandbox/webhook-deliveries`` - the delivery log, one entry per attempt (``?since=SEQ``);
  ``DELETE`` empties it
* ``GET /_sandbox/webhooks`` - ``{"subscriptions": [...], "status": {paused, queued, held, in_flight,
  faults, logged}}``
* ``POST /_sandbox/webhooks/subscribe`` - ``{"topic", "url", ...options}``: ``store.subscribe``
* ``GET|POST|DELETE /_sandbox/webhooks/faults`` - list, add (JSON body of :class:`WebhookFault`
  fields: ``kind`` drop/duplicate/delay/reorder, ``topic``, ``times``, ``delay``, ``order``,
  ``seed``), clear
* ``POST /_sandbox/webhooks/pause`` / ``POST /_sandbox/webhooks/resume`` - hold / release every delivery
* ``POST /_sandbox/webhooks/release`` - release the deliveries a reorder fault holds
* ``POST /_sandbox/webhooks/wait`` - ``{"timeout": seconds}`` (default 10): ``{"idle": bool}`` once
  nothing is queued, held or in flight
* ``GET|POST /_sandbox/webhooks/settings`` - read / set the store's delivery settings: ``retry_delays`` (a list of
  seconds; Shopify), ``timeout`` (seconds), ``secret`` (Shopify's signing secret; WooCommerce's
  default for ``subscribe``), ``max_failures`` (WooCommerce); answers the settings in force

Bulk operations (Shopify stores; ``shopify_bulk.py``):

* ``GET /_sandbox/bulk-operations`` - every bulk operation's public fields, oldest first
* ``POST /_sandbox/bulk-operations/fail-next`` - ``{"error_code", "partial", "after_objects"}``: the next
  ``bulkOperationRunQuery`` ends FAILED
* ``POST /_sandbox/bulk-operations/expire`` - ``{"id"}``: a finished operation is EXPIRED now
* ``GET|POST /_sandbox/bulk-operations/settings`` - ``objects_per_second``, ``start_delay``,
  ``cancel_delay``, ``url_lifetime``, ``max_concurrent_queries``
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .base import BaseStore, Request, Response
from .webhooks import WebhookFault

HOST = "127.0.0.1"
# Loopback unless told otherwise: docker-compose's demo profile serves the stores to the other containers
# (bind 0.0.0.0) under the service's name (the host in the URLs the connections get).
BIND_HOST = os.environ.get("ORDERSYNC_SANDBOX_BIND", HOST)
PUBLIC_HOST = os.environ.get(
    "ORDERSYNC_SANDBOX_PUBLIC_HOST", HOST if BIND_HOST in ("0.0.0.0", "::") else BIND_HOST
)

FAULT_KINDS = (
    "http_error",
    "html",
    "timeout",
    "drop_before",
    "drop_after",
    "truncated",
    "error_body_200",
    "throttled",
)
_COMMITTING_KINDS = ("drop_after", "truncated")


@dataclass
class Fault:
    """An injected failure for requests whose operation label equals ``match`` (``"*"``: any).

    Consumed once per matching request; removed from ``store.faults`` after ``times`` requests
    (``times < 0``: never removed). ``status`` / ``delay`` / ``retry_after`` default per kind:
    http_error 500, html 502, timeout 2.0 s, 429 Retry-After 1.
    """

    match: str
    kind: str
    times: int = 1
    status: int | None = None
    delay: float = 0.0
    retry_after: float | None = None
    used: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.times == 0:
            raise ValueError("times must be positive (or negative for 'every request')")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def take_fault(store: BaseStore, operation: str) -> Fault | None:
    """The first pending fault matching ``operation``, consumed once (thread-safe)."""
    with store.meta_lock:
        for fault in store.faults:
            if fault.match == "*" or fault.match == operation:
                fault.used += 1
                if fault.times > 0 and fault.used >= fault.times:
                    store.faults.remove(fault)
                return fault
    return None


def _error_body_200(store: BaseStore) -> Response:
    if store.platform == "woocommerce":
        payload: Any = {"code": "internal_error", "message": "Internal error", "data": {"status": 500}}
    else:
        payload = {"errors": [{"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}
    return Response.json(200, payload)


def _generic_error(status: int, fault: Fault | None = None) -> Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    headers = {}
    if status == 429:
        headers["Retry-After"] = _fmt_seconds(
            fault.retry_after if fault and fault.retry_after is not None else 1
        )
    return Response.json(status, {"errors": f"{status} {phrase}"}, headers)


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _error_response(store: BaseStore, status: int, fault: Fault) -> Response:
    make = getattr(store, "error_response", None)
    resp = make(status, fault) if callable(make) else _generic_error(status, fault)
    if status == 429 and not any(k.lower() == "retry-after" for k in resp.headers):
        resp.headers["Retry-After"] = _fmt_seconds(fault.retry_after if fault.retry_after is not None else 1)
    return resp


def _html_page(status: int) -> Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
    return Response(status, body, {"Content-Type": "text/html; charset=utf-8"})


def _throttled(store: BaseStore, fault: Fault) -> Response:
    make = getattr(store, "throttled_response", None)
    if callable(make):
        return make()
    return _error_response(store, 429, fault)


def _logged_body(req: Request) -> Any:
    if not req.body:
        return None
    try:
        return json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return req.body.decode("utf-8", errors="replace")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "ordersync-sandbox/0.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            sys.stderr.write(f"[{self.server.store.name}] {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # --- plumbing ---

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, resp: Response, body: bytes | None = None) -> None:
        payload = resp.body if body is None else body
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection without a byte of response: the client sees a ConnectionError."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- dispatch ---

    def _dispatch(self) -> None:
        store = self.server.store
        received = time.time()
        body = self._read_body()
        req = Request.build(self.command, self.path, dict(self.headers.items()), body)
        if req.path.startswith("/_sandbox/"):
            self._send(self._control(req))
            return
        if store.latency > 0:
            time.sleep(store.latency)
        operation = self._safe(store.operation_of, req, "?")
        write = bool(self._safe(store.is_write, req, False))
        fault = take_fault(store, operation)
        # Decide the answer (running the store when the fault lets it), log it, then do the I/O:
        # the log is complete by the time the client sees anything, even a dropped connection.
        resp: Response | None = None  # what to send; None: close without answering
        body: bytes | None = None
        store_status: int | None = None
        kind = fault.kind if fault else None
        if fault is None:
            resp = self._handle(store, req)
            store_status = resp.status
        elif kind == "http_error":
            resp = _error_response(store, fault.status or 500, fault)
        elif kind == "html":
            resp = _html_page(fault.status or 502)
        elif kind == "drop_after":
            store_status = self._handle(store, req).status
        elif kind == "truncated":
            full = self._handle(store, req)
            store_status = full.status
            body = full.body[: len(full.body) // 2]
            resp = Response(200, body, full.headers)
        elif kind == "error_body_200":
            resp = _error_body_200(store)
        elif kind == "throttled":
            resp = _throttled(store, fault)
        entry = {
            "time": received,
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "operation": operation,
            "headers": dict(req.headers),
            "body": _logged_body(req),
            "status": resp.status if resp is not None else None,
            "fault": kind,
            "write": write,
            "store_status": store_status,
        }
        with store.meta_lock:
            store._seq += 1
            entry["seq"] = store._seq
            store.requests.append(entry)
        try:
            if resp is not None:
                self._send(resp, body)
            else:
                if kind == "timeout":
                    time.sleep(fault.delay if fault and fault.delay > 0 else 2.0)
                self._drop()
        except OSError:
            self.close_connection = True  # the client went away mid-answer

    def _handle(self, store: BaseStore, req: Request) -> Response:
        try:
            return store.handle(req)
        except Exception as exc:  # a sandbox bug: answer 500 and say so on stderr
            traceback.print_exc()
            return Response.json(500, {"errors": f"sandbox store error: {type(exc).__name__}: {exc}"})

    @staticmethod
    def _safe(fn: Any, req: Request, default: Any) -> Any:
        try:
            return fn(req)
        except Exception:
            return default

    # --- control endpoints ---

    def _control(self, req: Request) -> Response:
        store = self.server.store
        route = req.path.rstrip("/")
        try:
            if route == "/_sandbox/requests" and req.method == "GET":
                since = int(req.arg("since") or 0)
                return Response.json(200, [e for e in store.log() if e["seq"] > since])
            if route == "/_sandbox/state" and req.method == "GET":
                try:
                    state = store.state()
                except NotImplementedError:
                    return Response.json(404, {"error": f"{type(store).__name__} has no state()"})
                return Response(
                    200,
                    json.dumps(state, default=str).encode(),
                    {"Content-Type": "application/json; charset=utf-8"},
                )
            if route == "/_sandbox/faults":
                if req.method == "GET":
                    with store.meta_lock:
                        return Response.json(200, [f.to_dict() for f in store.faults])
                if req.method == "POST":
                    spec = req.json() or {}
                    allowed = {f.name for f in fields(Fault)} - {"used"}
                    unknown = set(spec) - allowed
                    if unknown:
                        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
                    return Response.json(201, store.add_fault(**spec).to_dict())
                if req.method == "DELETE":
                    store.clear_faults()
                    return Response.json(200, [])
            if route == "/_sandbox/reset-log" and req.method == "POST":
                store.clear_log()
                return Response.json(200, {"ok": True})
            if route == "/_sandbox/latency" and req.method == "POST":
                store.latency = float((req.json() or {}).get("latency", 0.0))
                return Response.json(200, {"latency": store.latency})
            if route.startswith("/_sandbox/bulk-operations") and hasattr(store, "bulk_control"):
                answer = store.bulk_control(route, req)
                if answer is not None:
                    return answer
            if route == "/_sandbox/webhook-deliveries" or route.startswith("/_sandbox/webhooks"):
                answer = _webhook_control(store, route, req)
                if answer is not None:
                    return answer
        except (ValueError, TypeError, KeyError) as exc:
            return Response.json(400, {"error": str(exc)})
        return Response.json(404, {"error": f"no sandbox control endpoint {req.method} {req.path}"})


def _jsonable(value: Any) -> Response:
    return Response(
        200, json.dumps(value, default=str).encode(), {"Content-Type": "application/json; charset=utf-8"}
    )


_SETTINGS = {  # control name -> store attribute
    "retry_delays": "webhook_retry_delays",
    "timeout": "webhook_timeout",
    "secret": "webhook_secret",
    "max_failures": "max_webhook_delivery_failures",
}


def _webhook_settings(store: BaseStore) -> dict[str, Any]:
    return {name: getattr(store, attr) for name, attr in _SETTINGS.items() if hasattr(store, attr)}


def _webhook_control(store: BaseStore, route: str, req: Request) -> Response | None:
    """The ``/_sandbox/webhook*`` control endpoints (see the module docstring); None: no such endpoint."""
    if route == "/_sandbox/webhook-deliveries":
        if req.method == "GET":
            return _jsonable(store.webhook_deliveries(int(req.arg("since") or 0)))
        if req.method == "DELETE":
            store.clear_webhook_deliveries()
            return Response.json(200, [])
        return None
    if route == "/_sandbox/webhooks" and req.method == "GET":
        return _jsonable({"subscriptions": store.subscriptions(), "status": store.webhooks.status()})
    if route == "/_sandbox/webhooks/subscribe" and req.method == "POST":
        spec = dict(req.json() or {})
        topic, url = spec.pop("topic"), spec.pop("url")
        try:
            created = store.subscribe(topic, url, **spec)
        except Exception as exc:
            render = getattr(exc, "response", None)  # a WooError renders itself
            if callable(render):
                return render()
            raise
        return Response.json(201, json.loads(json.dumps(created, default=str)))
    if route == "/_sandbox/webhooks/faults":
        if req.method == "GET":
            return Response.json(200, [f.to_dict() for f in store.webhooks.faults()])
        if req.method == "POST":
            spec = req.json() or {}
            allowed = {f.name for f in fields(WebhookFault)} - {"used"}
            unknown = set(spec) - allowed
            if unknown:
                raise ValueError(f"unknown webhook fault fields: {sorted(unknown)}")
            return Response.json(201, store.add_webhook_fault(**spec).to_dict())
        if req.method == "DELETE":
            store.clear_webhook_faults()
            return Response.json(200, [])
        return None
    if route == "/_sandbox/webhooks/settings" and req.method == "GET":
        return _jsonable(_webhook_settings(store))
    if req.method != "POST":
        return None
    if route == "/_sandbox/webhooks/pause":
        store.pause_webhooks()
        return Response.json(200, store.webhooks.status())
    if route == "/_sandbox/webhooks/resume":
        store.resume_webhooks()
        return Response.json(200, store.webhooks.status())
    if route == "/_sandbox/webhooks/release":
        return Response.json(200, {"released": store.release_held_webhooks()})
    if route == "/_sandbox/webhooks/wait":
        timeout = float((req.json() or {}).get("timeout", 10.0))
        return Response.json(200, {"idle": store.wait_for_deliveries(timeout)})
    if route == "/_sandbox/webhooks/settings":
        spec = req.json() or {}
        unknown = set(spec) - {name for name, attr in _SETTINGS.items() if hasattr(store, attr)}
        if unknown:
            raise ValueError(f"unknown webhook settings for this store: {sorted(unknown)}")
        for name, value in spec.items():
            if name == "retry_delays":
                value = tuple(float(v) for v in value)
            elif name in ("timeout",):
                value = float(value)
            elif name == "max_failures":
                value = int(value)
            setattr(store, _SETTINGS[name], value)
        return _jsonable(_webhook_settings(store))
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 makes bursts of new connections wait for SYN retries

    def __init__(self, address: tuple[str, int], store: BaseStore, verbose: bool) -> None:
        self.store = store
        self.verbose = verbose
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return  # clients hanging up (and our own drops) are routine here
        super().handle_error(request, client_address)


class StoreServer:
    """One store on ``http://127.0.0.1:PORT``. ``port=0`` picks a free port."""

    def __init__(self, store: BaseStore, port: int = 0, verbose: bool = False) -> None:
        self.store = store
        self.requested_port = port
        self.verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{PUBLIC_HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> StoreServer:
        if self._server is not None:
            return self
        self._server = _Server((BIND_HOST, self.requested_port), self.store, self.verbose)
        self.store.url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.store.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()  # stops accepting; returns once serve_forever has exited
        server.close_open_connections()  # wake keep-alive handler threads so clients reconnect (and fail)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
