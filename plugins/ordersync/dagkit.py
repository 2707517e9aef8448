"""What the ordersync DAG files share: the operator params, retry defaults, run context, the sync-slot gate.

Imported by the DAG files at parse time, so it imports nothing but ``airflow.sdk`` and the standard
library; the domain is imported inside the functions, when a task runs.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

SCHEDULE = "*/5 * * * *"          # every tick; ordersync.schedule decides which ticks sync
START_DATE = datetime(2026, 1, 1)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "ordersync",
    "retries": int(os.environ.get("ORDERSYNC_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def operator_params() -> dict[str, Param]:
    """``order_ids``, ``vendors``, ``dry_run``: the Trigger DAG form (operator contract)."""
    return {
        "order_ids": Param([], type="array", items={"type": "string"}, title="Order ids",
                           description="Only these merchant orders: GID, numeric id or name (#1001). Empty = all "
                                       "changed since the last sync."),
        "vendors": Param([], type="array", items={"type": "string"}, title="Vendors",
                         description="Only these vendors (names from ordersync_vendors). Empty = all."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Decide and log everything; write nothing to any store; move no watermark."),
    }


def run_env() -> tuple[Any, Any]:
    """This task's Env (Variables, Connections, ledger) and RunParams, keyed ``dag_id/run_id``."""
    from ordersync.airflow_env import load_env_or_explain
    from ordersync.sync import RunParams

    context = get_current_context()
    run_key = f"{context['dag'].dag_id}/{context['run_id']}"   # run ids repeat across DAGs; ledger keys must not
    return load_env_or_explain(), RunParams.from_params(run_key, dict(context["params"]))


def skip_unless_sync_slot(env: Any) -> None:
    """Scheduled ticks off the ``sync_frequency_minutes`` grid skip here (manual runs always sync)."""
    from ordersync.schedule import sync_slot

    dag_run = get_current_context()["dag_run"]
    due, why = sync_slot(env.settings.sync_frequency_minutes, dag_run.run_type, dag_run.run_after)
    if not due:
        raise AirflowSkipException(why)


def set_map_label(vendor: str) -> None:
    """The value ``map_index_template="{{ vendor }}"`` shows for this mapped task."""
    get_current_context()["vendor"] = vendor  # type: ignore[typeddict-unknown-key]


def failed_upstream(task_ids: list[str]) -> list[str]:
    """Upstream tasks of this run that failed (the summary task is the only leaf and must say so)."""
    ti = get_current_context()["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=task_ids).get(ti.run_id, {})
    return sorted(task for task, state in states.items() if state in ("failed", "upstream_failed"))


def fail_if_not_validated(validated: Any, failed: list[str]) -> dict[str, str] | None:
    """None when validation passed; else fail the run (validation failed) or report the skipped tick."""
    if validated is not None:
        return None
    if failed:
        raise AirflowFailException("validate_settings failed: nothing was read or written (its log names the problem)")
    return {"skipped": "not a sync slot; nothing was read or written"}
