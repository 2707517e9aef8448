"""Operator alerts: what needs a human, sent once.

Every alert is written to the task log (``ALERT`` lines). When
``failure_alerts.webhook_conn_id`` names a connection, the alerts of a step are
POSTed there as one JSON document (the connection's ``host`` is the URL; its
extra, as with Airflow's HTTP connections, becomes request headers).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import requests

from ordersync.platforms import StoreConnection
from ordersync.settings import Settings

log = logging.getLogger("ordersync")

SUGGESTIONS = {
    "manual": "line items changed at the merchant after the push: change the vendor order by hand",
    "cancel_refused": "the vendor order could not be cancelled (already fulfilled?): settle it with the vendor",
}


@dataclass(frozen=True)
class Alert:
    kind: str              # manual | cancel_refused | failed
    order: str             # merchant order name
    vendor: str
    operation: str         # create | update | cancel | line_items
    message: str
    suggestion: str = ""


def send(settings: Settings, webhook: StoreConnection | None, run_id: str, alerts: list[Alert]) -> int:
    """Log and deliver; returns how many alerts went out. Never raises: a broken alert channel is logged."""
    if not alerts:
        return 0
    for alert in alerts:
        log.warning("ALERT %s for order %s at vendor %r (%s): %s%s", alert.kind, alert.order, alert.vendor,
                    alert.operation, alert.message, f" — what to do: {alert.suggestion}" if alert.suggestion else "")
    if not settings.failure_alerts.enabled or webhook is None:
        return len(alerts)
    body = {"source": "ordersync", "run_id": run_id, "alerts": [asdict(a) for a in alerts]}
    headers = {"Content-Type": "application/json"}
    headers.update({str(k): str(v) for k, v in webhook.extra.items() if k != "timeout"})
    try:
        response = requests.post(webhook.base_url(), data=json.dumps(body), headers=headers,
                                 timeout=webhook.timeout())
        response.raise_for_status()
    except requests.RequestException as exc:
        log.error("could not deliver %d alert(s) to webhook connection %s: %s", len(alerts), webhook.conn_id,
                  type(exc).__name__)
    return len(alerts)
