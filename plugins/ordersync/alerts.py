"""Operator alerts: one per run that needs a human, whatever the retries.

Tasks never send. They log an ``ALERT`` line and leave what needs a human in the ledger: each order's
``failed`` decision (with its operation) and the notices of :func:`queue` (line items changed, a cancel
refused, a vendor order cancelled at the vendor, a vendor store that could not be read). The run's summary
task then calls :func:`deliver`, which gathers the run's *final* failures (a failure a task retry mended is
not one), adds a suggested fix to each and sends one alert:

* by e-mail to ``failure_alerts.emails``, through Airflow's SMTP notifier and the SMTP connection
  (``smtp_default``, or ``ORDERSYNC_SMTP_CONN_ID``);
* as one JSON document POSTed to the connection named by ``failure_alerts.webhook_conn_id`` (its ``host``
  is the URL; its extra, as with Airflow's HTTP connections, becomes request headers).

Each channel's delivery is recorded in the ledger, so a retried summary task sends what did not go out and
nothing twice (at least once: a crash between sending and recording sends again). A channel that fails makes
the summary task fail with a retryable error, so Airflow's retry delivers it later.

The DAG-run deadline callback, ``ordersync.airflow.deadline.missed``, sends its alert through :func:`deliver` too.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import requests

from ordersync.platforms import StoreConnection

if TYPE_CHECKING:
    from ordersync.context import Env
    from ordersync.ledger import Ledger

log = logging.getLogger("ordersync")

SMTP_CONN_ID = "smtp_default"

SUGGESTIONS = {
    "manual": "line items changed at the merchant after the push: change the vendor order by hand",
    "cancel_refused": "the vendor order could not be cancelled (already fulfilled?): settle it with the vendor",
    "vendor_cancelled": (
        "the vendor cancelled its share in its own store: ask the vendor why, then cancel or refund those lines "
        "at the merchant or have them shipped another way (ordersync leaves the merchant order open and writes "
        "no tracking back from that vendor order; the tag ordersync-vendor-cancelled finds such orders)"
    ),
}

# What to do about a failure, by what its message says (first match wins). {store} names the store the
# operation writes to, {conn} its Airflow connection.
LEDGER_FIX = (
    "check the ordersync_ledger connection and that its database is up; the order is retried on the next run"
)
_FIXES: list[tuple[str, str]] = [
    (r"ledger|database|OperationalError|psycopg2|sqlite3", LEDGER_FIX),
    (
        r"HTTP 40[13]\b|Invalid API key|access token|unauthori[sz]ed|forbidden|rest_cannot|authentication",
        "check the store connection and API credentials: Airflow connection {conn} ({store})",
    ),
    (
        r"\bSKU\b|variant|product|catalog|not mapped|unmapped",
        "check the SKU mapping: each line's SKU must exist on a product variant in the catalog of {store}",
    ),
    (r"\bpaid\b|payment|financial status", "check the order's payment status at the merchant"),
    (
        r"timed out|no answer within|could not connect|connection (refused|dropped)|HTTP 5\d\d|HTTP 429|THROTTLED|"
        r"rate limited|not valid JSON|an HTML page|truncated|outcome unknown",
        "{store} was unreachable or busy: it is retried on the next run (an order that may have been created is "
        "looked up first, never created twice); if it persists, check Airflow connection {conn} and the store's "
        "status",
    ),
]
_DEFAULT_FIX = (
    'read the store\'s message; fix the order or {store}, then trigger {dag} with order_ids=["{order}"]'
)


@dataclass(frozen=True)
class Alert:
    kind: str  # failed | manual | cancel_refused | vendor_cancelled | task_failed | deadline
    order: str  # merchant order name, or "(run)" for the run as a whole
    vendor: str
    operation: str  # create | update | cancel | tracking | line_items | read | a task id
    message: str
    suggestion: str = ""


def suggest(
    operation: str, message: str, vendor: str, conn_id: str, order: str = "", dag: str = "order_sync"
) -> str:
    """The suggested fix for a failure: which connection, which mapping, which status to check."""
    if operation == "tracking":
        store = f"the merchant's store or the store of vendor {vendor!r}"
        conn, dag = f"ordersync_merchant or {conn_id or 'the vendor conn_id'}", "tracking_sync"
    elif vendor:
        store, conn = f"the store of vendor {vendor!r}", conn_id or "(the vendor's conn_id)"
    else:
        store, conn = "the merchant's store", "ordersync_merchant"
    for pattern, fix in _FIXES:
        if re.search(pattern, message, re.IGNORECASE):
            return fix.format(store=store, conn=conn)
    return _DEFAULT_FIX.format(store=store, dag=dag, order=order)


def log_alert(alert: Alert) -> None:
    log.warning(
        "ALERT %s for order %s at vendor %r (%s): %s%s",
        alert.kind,
        alert.order,
        alert.vendor,
        alert.operation,
        alert.message,
        f" — what to do: {alert.suggestion}" if alert.suggestion else "",
    )


def rows(items: Iterable[Alert]) -> list[dict[str, str]]:
    """Alerts as the ledger's alert rows (``Ledger.queue_alerts``, ``Ledger.update_pushed(with_alerts=)``)."""
    return [
        {
            "kind": a.kind,
            "merchant_order_name": a.order,
            "vendor": a.vendor,
            "operation": a.operation,
            "message": a.message,
            "suggestion": a.suggestion,
        }
        for a in items
    ]


def queue(ledger: Ledger, run_id: str, items: Iterable[Alert], dry_run: bool = False) -> int:
    """Log notices now; the run's summary sends them (never in a dry run)."""
    items = list(items)
    for alert in items:
        log_alert(alert)
    if items and not dry_run:
        ledger.queue_alerts(run_id, rows(items))
    return len(items)


def run_failures(env: Env, run_id: str, dag: str) -> list[Alert]:
    """The run's final failures: per (order, vendor, shipment) the last decision, when it is failed (a task retry
    that mended it leaves a later, successful decision)."""
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in env.ledger.decisions_for_run(run_id):
        last[(row["merchant_order_id"], row["vendor"], row.get("subject") or "")] = row
    out = []
    for (_, vendor, _subject), row in last.items():
        if row["outcome"] != "failed":
            continue
        operation = row.get("operation") or ""
        config = env.vendors.get(vendor)
        conn_id = config.conn_id if config else ""
        out.append(
            Alert(
                "failed",
                row["merchant_order_name"],
                vendor,
                operation or "push",
                row["reason"],
                suggest(operation, row["reason"], vendor, conn_id, row["merchant_order_name"], dag),
            )
        )
    return out


def run_notices(ledger: Ledger, run_id: str) -> list[Alert]:
    return [
        Alert(r["kind"], r["merchant_order_name"], r["vendor"], r["operation"], r["message"], r["suggestion"])
        for r in ledger.queued_alerts(run_id)
    ]


_TASK_FIXES = {
    "validate_settings": "fix the setting, vendor or connection the message names; nothing was written",
    "fetch_orders": "check the merchant's store connection ordersync_merchant and its API credentials",
    "decide": "read the decide task's log; the orders are decided again on the next run",
}


def task_failures(failed_tasks: dict[str, str]) -> list[Alert]:
    """Tasks that failed as a whole (settings, the merchant store, the ledger), with the error they reported."""
    out = []
    for task_id, error in failed_tasks.items():
        if task_id == "fetch_orders" and error:
            fix = suggest("read", error, "", "ordersync_merchant")
        else:
            fix = _TASK_FIXES.get(task_id, "read the task's log; its orders are retried on the next run")
        out.append(
            Alert(
                "task_failed",
                "(run)",
                "",
                task_id,
                error or f"task {task_id} failed; its log names the problem",
                fix,
            )
        )
    return out


def for_run(
    env: Env,
    run_id: str,
    dag_id: str,
    failed_tasks: dict[str, str],
    mapped_tasks: Iterable[str] = (),
    read_ledger: bool = True,
) -> list[Alert]:
    """Everything the run's one alert lists: final order failures, queued notices, tasks that failed as a whole
    (a failed mapped task whose orders are listed already is not listed again). ``read_ledger=False`` when
    the run stopped at validation (the ledger may not even exist yet)."""
    items: list[Alert] = []
    try:
        if read_ledger:
            items += run_failures(env, run_id, dag_id) + run_notices(env.ledger, run_id)
    except Exception as exc:
        items.append(
            Alert(
                "task_failed",
                "(run)",
                "",
                "ledger",
                f"the sync ledger cannot be read: {describe(exc)}",
                LEDGER_FIX,
            )
        )
    listed = any(a.kind == "failed" for a in items)
    mapped = tuple(mapped_tasks)
    whole: dict[str, str] = {}
    for task, error in failed_tasks.items():
        base = task_of(task, mapped)
        if not (base in mapped and listed):
            whole.setdefault(base, error)
    return items + task_failures(whole)


def task_of(instance: str, mapped_tasks: Iterable[str]) -> str:
    """The task id of a task instance as Airflow names it in a run's task states: a mapped task's instances come
    as ``push_vendor_orders_0``, ``_1`` …"""
    stem = re.sub(r"_\d+$", "", instance)
    return stem if stem in mapped_tasks else instance


@dataclass(frozen=True)
class RunAlert:
    dag_id: str
    run_id: str
    items: tuple[Alert, ...]

    @property
    def failures(self) -> list[Alert]:
        return [a for a in self.items if a.kind in ("failed", "task_failed", "deadline")]

    def subject(self) -> str:
        failed, notices = len(self.failures), len(self.items) - len(self.failures)
        parts = [f"{failed} failure(s)"] if failed else []
        parts += [f"{notices} notice(s)"] if notices else []
        return f"[ordersync] {self.dag_id} run {self.run_id}: {', '.join(parts)}"

    def text(self) -> str:
        lines = [self.subject(), ""]
        for a in self.items:
            lines.append(f"- {a.kind}: order {a.order}, vendor {a.vendor or '-'}, {a.operation}: {a.message}")
            if a.suggestion:
                lines.append(f"  what to do: {a.suggestion}")
        return "\n".join(lines)

    def html(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(a.kind)}</td><td>{esc(a.order)}</td><td>{esc(a.vendor or '-')}</td>"
            f"<td>{esc(a.operation)}</td><td>{esc(a.message)}</td><td>{esc(a.suggestion)}</td></tr>"
            for a in self.items
        )
        return (
            f'<p>{esc(self.subject())}</p><table border="1" cellpadding="4"><tr><th>kind</th><th>order</th>'
            f"<th>vendor</th><th>operation</th><th>error</th><th>what to do</th></tr>{rows}</table>"
            f"<p>Each order's line in the task log says more; failed orders are retried on the next run.</p>"
        )

    def document(self) -> dict[str, Any]:
        return {
            "source": "ordersync",
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "subject": self.subject(),
            "failures": len(self.failures),
            "alerts": [asdict(a) for a in self.items],
        }


class AlertDeliveryError(RuntimeError):
    """A channel could not be reached; the summary task fails (retryable) so the alert goes out later."""


def deliver(
    env: Env, run_id: str, dag_id: str, items: list[Alert], use_ledger: bool = True
) -> dict[str, Any]:
    """Send the run's one alert on every configured channel that has not had it yet (per the ledger; without
    it, ``use_ledger=False``, on every channel)."""
    report: dict[str, Any] = {"items": len(items), "sent": [], "already": []}
    if not items:
        return report
    if not env.settings.failure_alerts.enabled:
        log.info("failure_alerts.enabled is false: %d alert item(s) written to this log only", len(items))
        return report
    alert = RunAlert(dag_id, run_id.split("/", 1)[-1], tuple(items))  # the ledger's key is dag_id/run_id
    done: set[str] = set()
    record = use_ledger
    try:
        if use_ledger:
            done = env.ledger.alert_delivered(run_id)
    except Exception as exc:  # the ledger is down: send anyway (at least once), record nothing
        log.error(
            "cannot read the alert deliveries from the ledger (%s): sending without that record",
            type(exc).__name__,
        )
        done, record = set(), False
    channels: dict[str, Any] = {}
    if env.settings.failure_alerts.emails:
        mailer = env.mailer

        def email() -> None:
            if mailer is None:
                raise AlertDeliveryError("no mail sender is configured for e-mail alerts")
            mailer(list(env.settings.failure_alerts.emails), alert.subject(), alert.html())

        channels["email"] = email
    if env.webhook is not None:
        channels["webhook"] = lambda: post_webhook(alert, env.webhook)
    if not channels:
        log.warning(
            "failure_alerts has no target (no emails, no webhook_conn_id): %d alert item(s) in this log only",
            len(items),
        )
    errors = []
    for name, send in channels.items():
        if name in done:
            report["already"].append(name)
            continue
        try:
            send()
        except Exception as exc:
            errors.append(f"{name}: {describe(exc)}")
            continue
        report["sent"].append(name)
        log.info("alert for run %s (%d item(s)) sent by %s", run_id, len(items), name)
        if record:
            try:
                env.ledger.mark_alert_delivered(run_id, name, len(items))
            except Exception as exc:
                log.error(
                    "alert sent by %s but not recorded in the ledger (%s): a retry may send it again",
                    name,
                    type(exc).__name__,
                )
    if errors:
        raise AlertDeliveryError(
            f"could not deliver the run's alert: {'; '.join(errors)} (the task is retried; "
            "channels already reached are not sent again)"
        )
    return report


def describe(exc: BaseException) -> str:
    """An exception in one line for an alert: type and message, credentials in URLs masked, at most 500 chars."""
    text = re.sub(r"://[^/@\s]+@", "://***@", str(exc))
    return f"{type(exc).__name__}: {text}"[:500]


def post_webhook(alert: RunAlert, webhook: StoreConnection) -> None:
    headers = {"Content-Type": "application/json"}
    headers.update({str(k): str(v) for k, v in webhook.extra.items() if k != "timeout"})
    response = requests.post(
        webhook.base_url(), data=json.dumps(alert.document()), headers=headers, timeout=webhook.timeout()
    )
    if response.status_code >= 300:
        raise AlertDeliveryError(f"webhook connection {webhook.conn_id} answered HTTP {response.status_code}")


def smtp_conn_id() -> str:
    """The SMTP connection e-mail alerts go through."""
    return os.environ.get("ORDERSYNC_SMTP_CONN_ID", SMTP_CONN_ID)
