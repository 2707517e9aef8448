"""The DAG-run deadline callback: a sync run that takes far longer than its interval alerts the operator.

Airflow's scheduler calls :func:`missed` (a ``SyncCallback`` of the DAG's ``DeadlineAlert``, see
``ordersync.airflow.dagkit.run_deadline``) on an executor when a run is still going at its deadline. The DAG files
name this module at parse time, so it imports only the standard library; the rest is imported on call.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("ordersync")


def missed(context: dict[str, Any] | None = None, minutes: float | None = None, **_: Any) -> dict[str, Any]:
    """Send one ``deadline`` alert for the late run on the run's alert channels (once per run and channel)."""
    from ordersync import alerts
    from ordersync.airflow.config import load_env

    dag_run = (context or {}).get("dag_run") or {}
    dag_id = str(dag_run.get("dag_id") or "order_sync")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "(unknown run)")
    started = dag_run.get("start_date") or dag_run.get("queued_at") or "an unknown time"
    within = f"{minutes:g} minutes" if minutes else "its deadline"
    alert = alerts.Alert(
        "deadline",
        "(run)",
        "",
        dag_id,
        f"run {run_id} (queued or started {started}) has not finished within {within}",
        "look at the run's running task in the Airflow UI: a vendor store that answers slowly or throttles "
        "(its task log shows the retries), a worker that died, or a backlog larger than the interval allows; "
        "raise sync_frequency_minutes or ORDERSYNC_RUN_DEADLINE_MINUTES if the backlog is expected",
    )
    alerts.log_alert(alert)
    env = load_env(need_vendor_connections=False)
    return alerts.deliver(env, f"{dag_id}/{run_id}#deadline", dag_id, [alert])
