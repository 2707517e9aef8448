"""
### order_sync — push marketplace orders to vendor stores

Pulls the merchant's Shopify orders changed since the last run, applies the
operator's settings (Variable `ordersync_settings`), splits each order by the
line items' `vendor`, and creates each vendor's share in that vendor's own
store (Variable `ordersync_vendors`), exactly once.

**Trigger by hand** with these params:

* `order_ids` — only these merchant orders (`gid://shopify/Order/123`, `123` or `#1001`); empty = all changed since the watermark
* `vendors` — only these vendors; empty = all
* `dry_run` — decide and log everything, write nothing to any store, move no watermark

**Read the log of `decide` and `push_vendor_orders`** (one mapped task per vendor): every order has one line
per vendor, `order #1001 → vendor 'Acme Tools': <outcome> — <why>`, the outcome one of pushed, updated,
cancelled, unchanged, manual (line items changed: a human must act), held, skipped, failed.

Scheduled runs tick every 5 minutes; only the ticks on the `sync_frequency_minutes` grid sync, the others
skip at `validate_settings` (so changing the setting needs no code edit and no parse-time Variable read).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

RETRIES = int(os.environ.get("ORDERSYNC_TASK_RETRIES", "2"))


def _run() -> tuple[Any, Any]:
    """The environment and this run's params (imported here: nothing heavy at parse time)."""
    from ordersync.airflow_env import load_env_or_explain
    from ordersync.sync import RunParams

    context = get_current_context()
    run_key = f"{context['dag'].dag_id}/{context['run_id']}"   # run ids repeat across DAGs; ledger keys must not
    return load_env_or_explain(), RunParams.from_params(run_key, dict(context["params"]))


@dag(
    dag_id="order_sync",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["ordersync"],
    default_args={
        "owner": "ordersync",
        "retries": RETRIES,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "order_ids": Param([], type="array", items={"type": "string"}, title="Order ids",
                           description="Only these merchant orders: GID, numeric id or name (#1001). Empty = all "
                                       "changed since the last sync."),
        "vendors": Param([], type="array", items={"type": "string"}, title="Vendors",
                         description="Only these vendors (names from ordersync_vendors). Empty = all."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Decide and log everything; write nothing to any store; move no watermark."),
    },
)
def order_sync() -> None:
    @task
    def validate_settings() -> dict[str, Any]:
        """Stop the run before any write when settings, vendors, connections or the ledger are wrong."""
        from ordersync.schedule import sync_slot

        context = get_current_context()
        env, run = _run()
        dag_run = context["dag_run"]
        due, why = sync_slot(env.settings.sync_frequency_minutes, dag_run.run_type, dag_run.run_after)
        if not due:
            raise AirflowSkipException(why)
        from ordersync.sync import validate

        return validate(env, run)

    @task
    def fetch_orders(checked: dict[str, Any]) -> dict[str, Any]:
        """Merchant orders changed since the watermark (or the named ones) into the ledger's run scratch."""
        from ordersync.sync import fetch

        return fetch(*_run())

    @task
    def decide(fetched: dict[str, Any]) -> list[dict[str, Any]]:
        """Order-level rules and the split: per vendor, the orders to create, update or cancel."""
        from ordersync.sync import decide as decide_orders

        return decide_orders(*_run())

    @task(map_index_template="{{ vendor }}", max_active_tis_per_dagrun=8)
    def push_vendor_orders(work: dict[str, Any]) -> dict[str, Any]:
        """One vendor's share: create its new orders exactly once, forward edits and cancellations."""
        from ordersync.sync import push_vendor

        get_current_context()["vendor"] = work["vendor"]  # type: ignore[typeddict-unknown-key]
        env, run = _run()
        result = push_vendor(env, run, work["vendor"], work)
        if result["failed"]:
            raise RuntimeError(f"{result['failed']} order(s) failed for vendor {work['vendor']}: "
                               f"{', '.join(result['failed_orders'])}; see the lines above, they are retried "
                               "on the next run")
        return result

    @task(trigger_rule="all_done")
    def summary() -> dict[str, Any]:
        """Totals for the run; moves the watermark once every fetched order is decided.

        The run's only leaf: it fails when an upstream task failed, so the run shows failed.
        """
        context = get_current_context()
        ti = context["ti"]
        upstream = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id],
                                      task_ids=["validate_settings", "fetch_orders", "decide", "push_vendor_orders"])
        states = upstream.get(ti.run_id, {})
        failed = sorted(task for task, state in states.items() if state in ("failed", "upstream_failed"))
        if ti.xcom_pull(task_ids="validate_settings") is None:
            if failed:
                raise AirflowFailException("validate_settings failed: nothing was fetched or written "
                                           "(its log names the problem)")
            return {"skipped": "not a sync slot; nothing was fetched or written"}
        from ordersync.sync import summarise

        fetched = ti.xcom_pull(task_ids="fetch_orders")
        work = ti.xcom_pull(task_ids="decide")
        results = [r for r in (ti.xcom_pull(task_ids="push_vendor_orders") or []) if r]
        env, run = _run()
        outcome = summarise(env, run, fetched, work is not None, results)
        if failed:
            raise AirflowFailException(f"failed task(s): {', '.join(failed)}; failed orders: "
                                       f"{', '.join(outcome['failed']) or 'none recorded'} (retried on the next run)")
        return outcome

    checked = validate_settings()
    work = decide(fetch_orders(checked))
    pushed = push_vendor_orders.expand(work=work)
    pushed >> summary()


order_sync()
