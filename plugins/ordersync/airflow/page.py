"""The Order Sync page and its JSON API, inside the Airflow API server under ``/ordersync/``.

Mounted by ordersync's Airflow plugin (:mod:`ordersync.airflow.plugin`), which also adds the **Order Sync** entry
to the UI's navigation (an ``external_views`` entry whose iframe loads ``/ordersync/``). Pages:

* ``GET /ordersync/`` — the overview: counts per state and vendor, the last 24 hours, held shares by reason,
  unmapped SKUs per vendor, the latest failures with the suggested fix, the last and next run of each DAG;
* ``GET /ordersync/orders?q=`` — find an order by name, numeric id or GID (one match opens it);
* ``GET /ordersync/orders/{ref}`` — the order's story; ``POST`` ``…/sync`` — **Sync again**.

The JSON API (``/ordersync/api/v1/…``, the operator contract's) answers the same facts; its OpenAPI schema is at
``/ordersync/openapi.json`` (``/ordersync/docs`` renders it).

Access is Airflow's own login: the UI's session cookie or a Bearer token from ``POST /auth/token``, checked by the
auth manager. Anything else gets ``401`` and no data (the HTML pages send the browser to Airflow's login). The
buyer's e-mail and phone are shown only to users the auth manager lets edit DAG runs; **Sync again** needs the
right to trigger that DAG and runs as the logged-in user. Nothing of a store's credentials is read here but the
connection's host (for the link into the vendor's admin).

Everything is read from the ledger (:class:`ordersync.ledger.story.Story`) and, for the runs, Airflow's metadata
database (the API server may read it). Imported only when the API server builds the plugin's app.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ordersync.ledger.story import STATES, Story

log = logging.getLogger("ordersync.page")

DAGS = ("order_sync", "tracking_sync")
TEMPLATES = Path(__file__).with_name("templates")
LINK_TTL = 30.0  # seconds a vendor's admin base URL (from its connection's host) is reused
MASK = "••• (hidden: you may not edit DAG runs)"
# the navigation icon: a box with two arrows (an order going out, tracking coming back)
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{color}" stroke-width="2" '
    'stroke-linecap="round" stroke-linejoin="round"><path d="M3 7l9-4 9 4-9 4-9-4z"/><path d="M3 7v10l9 4 9-4V7"/>'
    '<path d="M12 11v10"/></svg>'
)
ICONS = {"icon.svg": _ICON.format(color="#1f2937"), "icon-dark.svg": _ICON.format(color="#e5e7eb")}


# -- who is asking -------------------------------------------------------------------------------------------------


class Viewer:
    """The logged-in Airflow user and what the auth manager lets them do here."""

    def __init__(self, user: Any) -> None:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        self.user = user
        self.name = user.get_name()
        manager = get_auth_manager()
        self.sees_contact = bool(
            manager.is_authorized_dag(method="PUT", access_entity=DagAccessEntity.RUN, user=user)
        )
        self.may_trigger = {
            dag: bool(
                manager.is_authorized_dag(
                    method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag), user=user
                )
            )
            for dag in DAGS
        }


def _token(request: Request) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN) or None


class NotLoggedIn(Exception):
    pass


async def viewer(request: Request) -> Viewer:
    """The caller as a :class:`Viewer`; :class:`NotLoggedIn` (answered 401) for no, a bad or an expired token.
    Airflow's own check answers 403 for a bad token; the contract wants 401 for anything but a login."""
    from airflow.api_fastapi.app import get_auth_manager

    token = _token(request)
    if not token:
        raise NotLoggedIn("not logged in")
    try:
        user = await get_auth_manager().get_user_from_token(token)
    except Exception as exc:  # expired, forged, for another secret: not a login
        raise NotLoggedIn(type(exc).__name__) from None
    if user is None:
        raise NotLoggedIn("unknown user")
    return await run_in_threadpool(Viewer, user)


async def api_viewer(request: Request) -> Viewer:
    """:func:`viewer` for the JSON API: ``401`` for anything but a login."""
    try:
        return await viewer(request)
    except NotLoggedIn:
        raise HTTPException(
            401, "not logged in to Airflow: log in, or send a Bearer token from POST /auth/token"
        ) from None


LoggedIn = Annotated[Viewer, Depends(api_viewer)]


def _same_origin(request: Request) -> bool:
    """A form POST carried by the session cookie must come from this server's own pages (no cross-site trigger)."""
    if _token(request) and (request.headers.get("authorization") or "").lower().startswith("bearer "):
        return True  # a Bearer token is never sent by a browser on its own
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    if not origin:
        return False
    return urllib.parse.urlparse(origin).netloc == request.headers.get("host", "")


# -- links -----------------------------------------------------------------------------------------------------------


class _VendorLinks:
    """vendor -> a function from a vendor order id to its page in the vendor's admin (from the connection's host,
    looked up at most every ``LINK_TTL`` seconds). Only the host is read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = 0.0
        self._bases: dict[str, tuple[str, str]] = {}  # vendor -> (platform, base URL)
        self._conn_ids: dict[str, str] = {}  # vendor -> conn_id

    def _load(self) -> dict[str, tuple[str, str]]:
        import json

        from airflow.models.connection import Connection
        from airflow.models.variable import Variable

        from ordersync.platforms.base import StoreConnection
        from ordersync.settings import SettingsError, parse_vendors

        raw = Variable.get("ordersync_vendors", default_var=None)
        try:
            vendors = parse_vendors(raw if raw is None or isinstance(raw, str) else json.dumps(raw))
        except SettingsError:
            return {}
        bases = {}
        self._conn_ids = {v.vendor: v.conn_id for v in vendors}
        for v in vendors:
            try:
                host = Connection.get_connection_from_secrets(v.conn_id).host or ""
                bases[v.vendor] = (v.platform, StoreConnection(conn_id=v.conn_id, host=host).base_url())
            except Exception:  # no connection, no host: no link
                continue
        return bases

    def conn_ids(self) -> dict[str, str]:
        """vendor -> its conn_id (named in a failure's suggested fix), as of the last lookup."""
        return dict(self._conn_ids)

    def url(self, vendor: str, vendor_order_id: str | None) -> str | None:
        if not vendor_order_id:
            return None
        with self._lock:
            if time.monotonic() - self._at > LINK_TTL:
                try:
                    self._bases = self._load()
                except Exception as exc:  # the page still works without links
                    log.warning("vendor admin links unavailable: %s", exc)
                    self._bases = {}
                self._at = time.monotonic()
            found = self._bases.get(vendor)
        if found is None:
            return None
        from ordersync.platforms.registry import get

        make = get(found[0]).admin_order_url
        return make(found[1], vendor_order_id) if make else None


LINKS = _VendorLinks()


def ui_base() -> str:
    """The Airflow UI's path prefix (``[api] base_url``), so run links work behind a sub-path."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urllib.parse.urlparse(base).path.rstrip("/")


def run_url(dag_id: str, run_id: str | None) -> str | None:
    if not run_id:
        return None
    return f"{ui_base()}/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}"


def order_path(merchant_order_id: str) -> str:
    """The order page of a merchant order, by its numeric id (``/ordersync/orders/5001234``).

    Not by its name: the UI's frame mirrors the frame's path into its own route (``/plugin/ordersync/…``) and loads
    the decoded route back into the frame, so a ``%23`` (``#1001``) in the path would come back as a fragment and
    the page would ask for order ``''``. A numeric id needs no escaping; the page still takes a name or a GID."""
    return f"/ordersync/orders/{urllib.parse.quote(str(merchant_order_id).rsplit('/', 1)[-1], safe='')}"


def decision_dag(operation: str | None) -> str:
    return "tracking_sync" if operation == "tracking" else "order_sync"


def story() -> Story:
    from ordersync.airflow.webhooks import ledger

    return Story(ledger().engine, conn_ids=LINKS.conn_ids())


def order_view(ref: str, who: Viewer) -> dict[str, Any] | None:
    """:meth:`Story.order` with links added and the buyer's contact masked for who may not edit DAG runs."""
    found = story().order(ref)
    if found is None:
        return None
    buyer = found["merchant_order"]["buyer"]
    if not who.sees_contact:
        for key in ("email", "phone"):
            if buyer.get(key):
                buyer[key] = MASK
    found["contact_visible"] = who.sees_contact
    for share in found["shares"]:
        share["vendor_order_url"] = LINKS.url(share["vendor"], share["vendor_order_id"])
        share["run_url"] = run_url(share.get("dag_id") or "order_sync", share["run_id"])
        for d in share["decisions"]:
            d["dag_id"] = d.get("dag_id") or decision_dag(d.get("operation"))  # the ledger keys runs dag/run
            d["run_url"] = run_url(d["dag_id"], d["run_id"])
        for s in share["shipments"]:
            s["run_url"] = run_url(s.get("dag_id") or "tracking_sync", s["run_id"])
    for d in found["decisions"]:
        d["dag_id"] = d.get("dag_id") or decision_dag(d.get("operation"))
        d["run_url"] = run_url(d["dag_id"], d["run_id"])
    return found


def dag_runs() -> list[dict[str, Any]]:
    """Each DAG's last run and when the next scheduled one is due (Airflow's metadata database)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out = []
    with create_session() as session:
        for dag_id in DAGS:
            model = session.get(DagModel, dag_id)
            last = session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(1)
            ).first()
            out.append(
                {
                    "dag_id": dag_id,
                    "paused": bool(model.is_paused) if model else None,
                    "next_due": model.next_dagrun_create_after.isoformat()
                    if model and model.next_dagrun_create_after
                    else None,
                    "last_run": {
                        "run_id": last.run_id,
                        "state": str(last.state.value if hasattr(last.state, "value") else last.state),
                        "run_type": str(
                            last.run_type.value if hasattr(last.run_type, "value") else last.run_type
                        ),
                        "run_after": last.run_after.isoformat() if last.run_after else None,
                        "url": run_url(dag_id, last.run_id),
                    }
                    if last
                    else None,
                    "url": f"{ui_base()}/dags/{dag_id}",
                }
            )
    return out


class SyncRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sync_again(ref: str, dag_id: str, dry_run: bool, who: Viewer) -> dict[str, Any]:
    """Trigger ``dag_id`` with the order in ``order_ids`` as the logged-in user; the run's id and page."""
    if dag_id not in DAGS:
        raise SyncRefused(400, f"dag must be one of {', '.join(DAGS)}, not {dag_id!r}")
    if not who.may_trigger.get(dag_id):
        raise SyncRefused(403, f"user {who.name!r} may not trigger {dag_id}")
    found = story().find(ref)
    if found is None:
        raise SyncRefused(404, f"order {ref!r}: ordersync has not seen it")
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    run = trigger_dag(
        dag_id,
        triggered_by=DagRunTriggeredByType.UI,
        triggering_user_name=who.name,
        conf={"order_ids": [found.name], "dry_run": bool(dry_run)},
        note=f"Sync again from the Order Sync page for {found.name}",
    )
    if run is None:
        raise SyncRefused(409, f"{dag_id} could not be triggered")
    with create_session() as session:
        model = session.get(DagModel, dag_id)
        paused = bool(model and model.is_paused)
    log.info(
        "user %s triggered %s for %s (dry_run=%s): %s", who.name, dag_id, found.name, dry_run, run.run_id
    )
    return {
        "dag_id": dag_id,
        "dag_run_id": run.run_id,
        "order": found.name,
        "merchant_order_id": found.id,
        "dry_run": bool(dry_run),
        "url": run_url(dag_id, run.run_id),
        "paused": paused,
    }


# -- HTML ------------------------------------------------------------------------------------------------------------


@cache
def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["quote"] = lambda value: urllib.parse.quote(str(value), safe="")
    env.filters["order_path"] = order_path
    env.filters["when"] = lambda value: (value or "")[:19].replace("T", " ") if value else "—"
    return env


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    page = _templates().get_template(name).render(states=STATES, prefix="/ordersync", **context)
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _login_page(request: Request) -> HTMLResponse:
    """401 with no data; the browser goes to Airflow's login and back here after it (into the UI's frame at
    ``/plugin/ordersync/…`` when the page was framed: Chromium and Firefox say so in ``Sec-Fetch-Dest``)."""
    from airflow.api_fastapi.app import get_auth_manager

    back = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # a form POST is not repeated after the login: back to the page it came from
        back = back.rsplit("/sync", 1)[0]
    if request.headers.get("sec-fetch-dest") == "iframe":
        back = f"{ui_base()}/plugin/ordersync{back}"
    try:
        login = get_auth_manager().get_url_login(next_url=back)
    except Exception:
        login = "/auth/login"
    return render("login.html", status=401, login=login)


# -- the API's shapes (its OpenAPI schema) --------------------------------------------------------------------------


class Decision(BaseModel):
    run_id: str
    at: str | None
    outcome: str
    reason: str
    operation: str | None = None
    dag_id: str | None = None
    run_url: str | None = None


class Shipment(BaseModel):
    vendor_order_id: str
    vendor_shipment: str
    state: str
    merchant_fulfillment_id: str | None = None
    company: str | None = None
    numbers: list[str] = []
    urls: list[str] = []
    written_at: str | None = None
    error: str | None = None
    run_id: str | None = None
    run_url: str | None = None


class RefundPart(BaseModel):
    merchant_refund_id: str
    state: str = Field(
        description="recorded, in_flight, failed, manual, skipped (sync_refunds off), before_push"
    )
    vendor_refund_id: str | None = None
    detail: str | None = Field(
        None, description="what the vendor order records: lines, restock, shipping, amount"
    )
    attempts: int = 0
    last_error: str | None = None
    at: str | None = None
    dag_id: str | None = None
    run_id: str | None = None


class Share(BaseModel):
    vendor: str
    state: Literal["pushed", "held", "skipped", "failed", "unknown", "in_flight", "cancelled", "manual"]
    reason: str | None = None
    hold_kind: str | None = None
    vendor_order_id: str | None = None
    vendor_order_name: str | None = None
    vendor_order_url: str | None = None
    attempts: int = 0
    last_error: str | None = None
    suggestion: str | None = None
    unmapped_skus: list[str] = []
    last_attempt_at: str | None = None
    pushed_at: str | None = None
    updated_at: str | None = None
    run_id: str | None = None
    shipments: list[Shipment] = []
    refunds: list[RefundPart] = []
    decisions: list[Decision] = []


class Buyer(BaseModel):
    name: str | None = None
    email: str | None = Field(None, description="masked unless the user may edit DAG runs")
    phone: str | None = Field(None, description="masked unless the user may edit DAG runs")


class MerchantOrderOut(BaseModel):
    id: str
    name: str
    legacy_id: str
    financial_status: str | None = None
    fulfillment_status: str | None = None
    created_at: str | None = None
    last_read_at: str | None = None
    buyer: Buyer


class OrderOut(BaseModel):
    merchant_order: MerchantOrderOut
    shares: list[Share]
    decisions: list[Decision] = Field(description="order-level decisions (an order that could not be read)")
    contact_visible: bool


class ShareRow(BaseModel):
    merchant_order_id: str
    merchant_order_name: str
    vendor: str
    state: str
    reason: str | None = None
    vendor_order_id: str | None = None
    vendor_order_name: str | None = None
    attempts: int = 0
    last_error: str | None = None
    updated_at: str | None = None


class SharesOut(BaseModel):
    shares: list[ShareRow]


class SyncIn(BaseModel):
    dag: Literal["order_sync", "tracking_sync"] = "order_sync"
    dry_run: bool = False


class SyncOut(BaseModel):
    dag_run_id: str
    dag_id: str
    order: str = Field(description="the merchant order's name, as the run's order_ids has it")
    merchant_order_id: str
    dry_run: bool
    url: str | None = None
    paused: bool = False


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "not logged in to Airflow"},
}


# -- routes ----------------------------------------------------------------------------------------------------------


def router() -> APIRouter:
    web = APIRouter()
    api = APIRouter(prefix="/api/v1", tags=["Order Sync"], responses=ERRORS)

    @api.get(
        "/orders",
        response_model=SharesOut,
        summary="Vendor shares, newest change first",
    )
    async def list_orders(
        who: LoggedIn,
        state: Annotated[str | None, Query(description=f"one of {', '.join(STATES)}")] = None,
        vendor: str | None = None,
        q: Annotated[str | None, Query(description="an order name prefix (#10…) or a GID")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:
        if state and state not in STATES:
            raise HTTPException(400, f"state must be one of {', '.join(STATES)}, not {state!r}")
        rows = await run_in_threadpool(story().shares, state, vendor, q, limit)
        return {"shares": rows}

    @api.post(
        "/orders/{ref:path}/sync",
        response_model=SyncOut,
        summary="Sync again: trigger order_sync or tracking_sync with this order in order_ids",
        responses={403: {"model": Problem}, 404: {"model": Problem}},
    )
    async def sync_order(ref: str, who: LoggedIn, body: Annotated[SyncIn | None, Body()] = None) -> Any:
        wanted = body or SyncIn()
        try:
            return await run_in_threadpool(sync_again, ref, wanted.dag, wanted.dry_run, who)
        except SyncRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @api.get(
        "/orders/{ref:path}",
        response_model=OrderOut,
        summary="One merchant order's story (by name #1001, numeric id or GID)",
        responses={404: {"model": Problem, "description": "an order ordersync never saw"}},
    )
    async def get_order(ref: str, who: LoggedIn) -> Any:
        found = await run_in_threadpool(order_view, ref, who)
        if found is None:
            raise HTTPException(404, f"order {ref!r}: ordersync has not seen it")
        return found

    @api.get("/overview", summary="The overview's facts")
    async def get_overview(who: LoggedIn) -> Any:
        facts = await run_in_threadpool(story().overview)
        facts["dags"] = await run_in_threadpool(dag_runs)
        return facts

    @api.api_route("/{anything:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
    async def api_not_found(anything: str) -> Response:
        # without this, a path under the plugin app with no route answers 200 with the Airflow UI's HTML
        return JSONResponse({"detail": f"no such endpoint: /ordersync/api/v1/{anything}"}, status_code=404)

    @web.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in ICONS:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return Response(ICONS[name], media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @web.get("/", include_in_schema=False)
    async def overview_page(request: Request) -> Response:
        try:
            who = await viewer(request)
        except NotLoggedIn:
            return _login_page(request)
        facts = await run_in_threadpool(story().overview)
        runs = await run_in_threadpool(dag_runs)
        peak = max([1] + [max(h["pushed"], h["held"], h["failed"]) for h in facts["last_24h"]])
        return render("overview.html", who=who, facts=facts, runs=runs, peak=peak)

    @web.get("/orders", include_in_schema=False)
    async def search_page(request: Request, q: str = "", state: str = "", vendor: str = "") -> Response:
        try:
            who = await viewer(request)
        except NotLoggedIn:
            return _login_page(request)
        text = q.strip()
        if text and not state and not vendor:
            found = await run_in_threadpool(story().find, text)
            if found is not None:
                return RedirectResponse(order_path(found.id), 303)
        rows = await run_in_threadpool(story().shares, state or None, vendor or None, text or None, 100)
        return render("search.html", who=who, q=text, state=state, vendor=vendor, rows=rows)

    @web.post("/orders/{ref:path}/sync", include_in_schema=False)
    async def sync_page(request: Request, ref: str) -> Response:
        try:
            who = await viewer(request)
        except NotLoggedIn:
            return _login_page(request)
        if not _same_origin(request):
            return render("message.html", status=403, who=who, message="Sync again must come from this page.")
        form = await request.form()
        dag_id = str(form.get("dag") or "order_sync")
        dry_run = str(form.get("dry_run") or "").lower() in ("1", "true", "on", "yes")
        try:
            started = await run_in_threadpool(sync_again, ref, dag_id, dry_run, who)
        except SyncRefused as exc:
            return render("message.html", status=exc.status, who=who, message=str(exc))
        query = urllib.parse.urlencode({"run": started["dag_run_id"], "dag": dag_id, "dry": int(dry_run)})
        return RedirectResponse(f"{order_path(started['merchant_order_id'])}?{query}", 303)

    @web.get("/orders/{ref:path}", include_in_schema=False)
    async def order_page(request: Request, ref: str, run: str = "", dag: str = "", dry: int = 0) -> Response:
        try:
            who = await viewer(request)
        except NotLoggedIn:
            return _login_page(request)
        found = await run_in_threadpool(order_view, ref, who)
        if found is None:
            return render(
                "message.html", status=404, who=who, message=f"ordersync has not seen an order {ref!r}."
            )
        triggered = None
        if run and dag in DAGS:
            triggered = {"run_id": run, "dag_id": dag, "url": run_url(dag, run), "dry_run": bool(dry)}
        return render("order.html", who=who, order=found, triggered=triggered, dags=DAGS)

    web.include_router(api)

    @web.get("/{anything:path}", include_in_schema=False)
    async def page_not_found(request: Request, anything: str) -> Response:
        # a path under the plugin app with no route would otherwise answer 200 with the Airflow UI's HTML
        try:
            who = await viewer(request)
        except NotLoggedIn:
            return _login_page(request)
        return render("message.html", status=404, who=who, message=f"No page at /ordersync/{anything}.")

    return web
