"""Airflow Variables and Connections become an :class:`~ordersync.context.Env`.

Called inside tasks, never at DAG-parse time.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from ordersync.alerts import smtp_conn_id
from ordersync.context import Env
from ordersync.ledger import Ledger, safe_url
from ordersync.paths import default_ledger_url
from ordersync.platforms import StoreConnection
from ordersync.settings import (
    SettingsError,
    parse_settings,
    parse_vendors,
    settings_per_vendor,
    vendors_by_name,
)

SETTINGS_VARIABLE = "ordersync_settings"
VENDORS_VARIABLE = "ordersync_vendors"
MERCHANT_CONN_ID = "ordersync_merchant"
LEDGER_CONN_ID = "ordersync_ledger"


def _variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _connection(conn_id: str, purpose: str) -> Any:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise SettingsError(
            f"connection {conn_id} ({purpose}) is not defined: add it under Admin → Connections "
            f"or as AIRFLOW_CONN_{conn_id.upper()}"
        ) from None


def _extra(conn: Any) -> dict[str, Any]:
    raw = getattr(conn, "extra", None)
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise SettingsError(f"connection {conn.conn_id}: extra is not valid JSON") from None
    return value if isinstance(value, dict) else {}


def store_connection(conn_id: str, purpose: str) -> StoreConnection:
    conn = _connection(conn_id, purpose)
    host = conn.host or ""
    if conn.schema and "://" not in host:
        host = f"{conn.schema}://{host}"
    if conn.port and host and f":{conn.port}" not in host:
        host = f"{host}:{conn.port}"
    if not host:
        raise SettingsError(f"connection {conn_id} ({purpose}) has no host: set it to the store's base URL")
    return StoreConnection(
        conn_id=conn_id, host=host, login=conn.login, password=conn.password, extra=_extra(conn)
    )


def ledger_url() -> str:
    """The SQLAlchemy URL from connection ``ordersync_ledger``, else the default SQLite file."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(LEDGER_CONN_ID)
    except AirflowNotFoundException:
        return default_ledger_url()
    return ledger_url_from(conn)


def ledger_url_from(conn: Any | None) -> str:
    """The ledger URL a connection ``ordersync_ledger`` (task SDK's or the API server's) names; None: the default."""
    if conn is None:
        return default_ledger_url()
    extra = _extra(conn)
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    if conn.host and "://" in conn.host:
        return conn.host
    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql"):
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg2",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
        ).render_as_string(hide_password=False)
    if kind == "sqlite":
        return f"sqlite:///{conn.host}"
    raise SettingsError(
        f"connection {LEDGER_CONN_ID}: cannot make a database URL from conn_type {kind!r}; "
        "use a postgres connection or put the URL in extra.sqlalchemy_url"
    )


def load_env(*, need_vendor_connections: bool = True, only_vendor: str | None = None) -> Env:
    """Settings, vendors, connections and the ledger; raises SettingsError naming what is wrong.

    ``only_vendor``: the one vendor a mapped task works for; only its connection is read (each lookup is a
    round trip to the API server or the secrets backend, and validate_settings has checked all of them)."""
    settings = parse_settings(_variable(SETTINGS_VARIABLE))
    vendors = parse_vendors(_variable(VENDORS_VARIABLE))
    settings_per_vendor(settings, vendors)  # a vendor's settings that do not hold together stop the run here
    merchant = store_connection(MERCHANT_CONN_ID, "the merchant's Shopify store")
    connections: dict[str, StoreConnection] = {}
    if need_vendor_connections:
        for vendor in vendors:
            if only_vendor is not None and vendor.vendor != only_vendor:
                continue
            if vendor.enabled and vendor.conn_id not in connections:
                connections[vendor.conn_id] = store_connection(vendor.conn_id, f"vendor {vendor.vendor}")
    webhook_id = settings.failure_alerts.webhook_conn_id
    webhook = store_connection(webhook_id, "failure_alerts.webhook_conn_id") if webhook_id else None
    smtp = None
    if settings.failure_alerts.enabled and settings.failure_alerts.emails:
        smtp = smtp_conn_id()
        _connection(smtp, "the SMTP server for failure_alerts.emails")
    return Env(
        settings=settings,
        vendors=vendors_by_name(vendors),
        merchant=merchant,
        connections=connections,
        ledger=_ledger(),
        webhook=webhook,
        smtp_conn_id=smtp,
        mailer=functools.partial(send_email, smtp_conn_id=smtp) if smtp else None,
    )


def send_email(to: list[str], subject: str, html: str, *, smtp_conn_id: str) -> None:
    """One e-mail through Airflow's SMTP notifier; the connection's extra ``from_email`` is the sender."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    notifier = SmtpNotifier(to=to, subject=subject, html_content=html, smtp_conn_id=smtp_conn_id)
    notifier.notify({})  # called directly: the content is ours, never rendered as a Jinja template


def _ledger() -> Ledger:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = ledger_url()
    try:
        return Ledger(url)
    except NoSuchModuleError as exc:
        raise SettingsError(
            f"connection {LEDGER_CONN_ID}: no database driver for {safe_url(url)} ({exc})"
        ) from None
    except ArgumentError:
        raise SettingsError(
            f"connection {LEDGER_CONN_ID}: {safe_url(url)} is not a database URL SQLAlchemy "
            "can use (dialect+driver://user:password@host:port/database)"
        ) from None


def load_env_or_explain(**kwargs: Any) -> Env:
    """:func:`load_env`, with a configuration problem written to the task log in plain words first."""
    try:
        return load_env(**kwargs)
    except SettingsError as exc:
        logging.getLogger("ordersync").error("configuration problem, nothing was written: %s", exc)
        raise
