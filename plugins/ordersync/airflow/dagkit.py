"""What the ordersync DAG files share: the operator params, retry defaults, run context, the sync-slot gate.

Imported by the DAG files at parse time, so it imports nothing but ``airflow.sdk`` and the standard
library; the domain is imported inside the functions, when a task runs.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, get_current_context
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

# every tick; ordersync.schedule decides which ticks sync. ORDERSYNC_TICK_CRON changes the tick for the stack
# tests and the benchmark (a tick a minute, so "the next scheduled run" comes within a minute); operators
# change sync_frequency_minutes instead.
SCHEDULE = os.environ.get("ORDERSYNC_TICK_CRON") or "*/5 * * * *"


# The Airflow Asset each DAG is scheduled on besides its cron (``AssetOrTimeSchedule``): the webhook receiver
# (ordersync.airflow.webhooks) records an event for it when it accepts a delivery, and Airflow's scheduler
# starts the DAG's event run within a second or two (or queues it while a run goes: bursts coalesce).
EVENT_ASSETS: dict[str, tuple[str, str]] = {  # dag_id -> (asset name, asset URI)
    "order_sync": ("ordersync_merchant_events", "ordersync://webhooks/order_sync"),
    "tracking_sync": ("ordersync_vendor_events", "ordersync://webhooks/tracking_sync"),
}


def event_asset(dag_id: str) -> Asset:
    """The asset the webhook receiver records an event for when a delivery for ``dag_id`` is accepted."""
    name, uri = EVENT_ASSETS[dag_id]
    return Asset(name=name, uri=uri, group="ordersync")


def schedule(dag_id: str) -> AssetOrTimeSchedule:
    """The 5-minute tick (reconciliation: reads everything changed) or an accepted webhook event (reads the
    inbox's orders), whichever comes first."""
    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SCHEDULE, timezone="UTC"), assets=[event_asset(dag_id)]
    )


START_DATE = datetime(2026, 1, 1)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "ordersync",
    "retries": int(os.environ.get("ORDERSYNC_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def run_deadline() -> DeadlineAlert:
    """A run still going ``ORDERSYNC_RUN_DEADLINE_MINUTES`` (default 30: twice the default interval) after it was
    queued alerts the operator (``ordersync.airflow.deadline.missed``, on the run's alert channels)."""
    raw = float(os.environ.get("ORDERSYNC_RUN_DEADLINE_MINUTES", "30"))
    minutes: float | int = int(raw) if raw.is_integer() else raw
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=SyncCallback("ordersync.airflow.deadline.missed", kwargs={"minutes": minutes}),
    )


def dag_arguments(dag_id: str, doc_md: str | None) -> dict[str, Any]:
    """What both DAGs share: the 5-minute tick, one run at a time, the params, retries and the run deadline."""
    return {
        "dag_id": dag_id,
        "schedule": schedule(dag_id) if dag_id in EVENT_ASSETS else SCHEDULE,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "doc_md": doc_md,
        "tags": ["ordersync"],
        "default_args": DEFAULT_ARGS,
        "params": operator_params(),
        "deadline": run_deadline(),
    }


def vendor_result(result: dict[str, Any], what: str) -> dict[str, Any]:
    """A mapped vendor task's result. The task fails at the end, naming the orders, when any of its ``what``
    failed; the vendor's other orders went through regardless."""
    if result["failed"]:
        raise RuntimeError(
            f"{result['failed']} {what} failed for vendor {result['vendor']}: "
            f"{', '.join(result['failed_orders'])}; see the lines above, they are retried on the "
            "next run"
        )
    return result


def fail_run_if(failed: dict[str, str], outcome: dict[str, Any], detail: str) -> dict[str, Any]:
    """The summary's end: the run fails when an upstream task failed (so the run shows failed), else returns."""
    if failed:
        raise AirflowFailException(f"failed task(s): {', '.join(failed)}; {detail} (retried on the next run)")
    return outcome


def operator_params() -> dict[str, Param]:
    """``order_ids``, ``vendors``, ``dry_run``: the Trigger DAG form (operator contract)."""
    return {
        "order_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Order ids",
            description="Only these merchant orders: GID, numeric id or name (#1001). Empty = all "
            "changed since the last sync.",
        ),
        "vendors": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Vendors",
            description="Only these vendors (names from ordersync_vendors). Empty = all.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Decide and log everything; write nothing to any store; move no watermark.",
        ),
    }


def run_env(vendor: str | None = None, *, vendor_connections: bool = True) -> tuple[Any, Any]:
    """This task's Env (Variables, Connections, ledger) and RunParams, keyed ``dag_id/run_id``. ``vendor``: a
    mapped task's vendor (only its connection is read); ``vendor_connections=False``: none is needed."""
    from ordersync.airflow.config import load_env_or_explain
    from ordersync.context import RunParams

    context = get_current_context()
    run_key = (
        f"{context['dag'].dag_id}/{context['run_id']}"  # run ids repeat across DAGs; ledger keys must not
    )
    with permanent_configuration_errors():
        run = RunParams.from_params(run_key, dict(context["params"]), event=is_event_run(context))
        return load_env_or_explain(need_vendor_connections=vendor_connections, only_vendor=vendor), run


def is_event_run(context: Any) -> bool:
    """A run started by a webhook event (the DAG's event asset), not by the clock or a person."""
    kind = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(kind, "value", kind) or "").lower() == "asset_triggered"


@contextmanager
def permanent_configuration_errors() -> Iterator[None]:
    """A configuration error (settings, vendors, params, a missing connection, an unknown platform) fails the task
    without retries: the same error retried never mends, and the run should say so within seconds. Transient
    errors (a store or the ledger not answering) pass through and are retried as usual."""
    from ordersync.settings import SettingsError

    try:
        yield
    except SettingsError as exc:
        raise AirflowFailException(f"configuration problem, nothing was written: {exc}") from exc


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


def failed_upstream(task_ids: list[str]) -> dict[str, str]:
    """Upstream task instances of this run that failed or could not start (``upstream_failed``), with that state;
    a mapped task's instances come as ``<task_id>_<map_index>``. The summary task is the only leaf and must say
    so; :func:`alert_run` takes the same answer, so the run's task states are asked for once."""
    ti = get_current_context()["ti"]
    found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=task_ids).get(ti.run_id, {})
    return {task: state for task, state in sorted(found.items()) if state in ("failed", "upstream_failed")}


def mapped_results(task_id: str) -> list[dict[str, Any]]:
    """The return values of a mapped task's instances. Airflow 3.3 hands back the bare value, not a list, when
    the task was mapped over exactly one vendor."""
    pulled = get_current_context()["ti"].xcom_pull(task_ids=task_id)
    return [r for r in ([pulled] if isinstance(pulled, dict) else (pulled or [])) if r]


def fail_if_not_validated(validated: Any, failed: dict[str, str]) -> dict[str, str] | None:
    """None when validation passed; else fail the run (validation failed) or report the skipped tick."""
    if validated is not None:
        return None
    if failed:
        raise AirflowFailException(
            "validate_settings failed: nothing was read or written (its log names the problem)"
        )
    return {"skipped": "not a sync slot; nothing was read or written"}


@contextmanager
def reported() -> Iterator[None]:
    """A task failing as a whole leaves its error (as XCom ``error``) for the run's alert."""
    try:
        with permanent_configuration_errors():
            yield
    except AirflowSkipException:
        raise
    except Exception as exc:
        try:
            from ordersync.alerts import describe

            get_current_context()["ti"].xcom_push(key="error", value=describe(exc))
        except Exception:  # the alert then says "see the task's log"
            logging.getLogger("ordersync").debug("could not leave the error for the alert", exc_info=True)
        raise


def alert_run(failed: dict[str, str], mapped: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Send the run's one alert: its final order failures, the notices its tasks queued, the tasks that failed.

    Never in a dry run. Settings that cannot be read leave no alert target: the failed run itself shows it.
    """
    context = get_current_context()
    if context["params"].get("dry_run"):
        return None
    from ordersync import alerts
    from ordersync.airflow.config import load_env

    ti, dag_id = context["ti"], context["dag"].dag_id
    ran = [t for t, state in failed.items() if state == "failed"]  # not the ones that only could not start
    # A task that failed as a whole left its error (``reported``); a mapped task's instances leave none.
    errors = {
        t: "" if alerts.task_of(t, mapped) in mapped else (ti.xcom_pull(task_ids=t, key="error") or "")
        for t in ran
    }
    try:
        env = load_env(need_vendor_connections=False)
    except Exception as exc:
        logging.getLogger("ordersync").error(
            "no alert can be sent, the settings cannot be read: %s", alerts.describe(exc)
        )
        return None
    run_key = f"{dag_id}/{context['run_id']}"
    ledger_ok = "validate_settings" not in errors  # else the ledger may be unreachable or not yet created
    items = alerts.for_run(env, run_key, dag_id, errors, mapped, read_ledger=ledger_ok)
    return alerts.deliver(env, run_key, dag_id, items, use_ledger=ledger_ok)


def local_test_without_deadline(dag: DAG) -> DAG:
    """Let ``dag.test()`` — what ``airflow dags test`` calls — run with the DAG's run deadline set.

    Airflow 3.3's ``dag.test`` runs a copy of the DAG serialized in memory, whose ``deadline`` holds the
    encoded alerts rather than the ids the metadata DB gives them, and crashes looking one up by id while it
    marks the run successful. No scheduler watches a ``dag.test`` run's deadline anyway, so this DAG's ``test``
    runs without one; the DAG file still declares it, so the scheduler and the serialized DAG keep it (the
    stack test ``tests/stack/test_deadline.py`` proves the alert there)."""
    dag.test = types.MethodType(_test_without_deadline, dag)  # type: ignore[method-assign]
    return dag


def _test_without_deadline(dag: DAG, *args: Any, **kwargs: Any) -> Any:
    saved = dag.deadline
    dag.deadline = None
    try:
        return DAG.test(dag, *args, **kwargs)
    finally:
        dag.deadline = saved
