"""
### tracking_sync — write vendor shipments and tracking back to the merchant order

For every vendor (one mapped task each), reads the vendor orders that ordersync pushed and that changed
since that vendor's tracking watermark, and writes each new shipment back to the merchant's Shopify order
as a fulfilment of exactly that vendor's lines and shipped quantities, with carrier, tracking numbers and
URLs (carrier names mapped through `include/rules/carriers.json`). A tracking number changed at the vendor
updates the existing merchant fulfilment. Each shipment is written exactly once. The buyer is notified
when the setting `notify_customer_on_tracking` is on (default).

WooCommerce tracking items have no line items: the first one ships all of that vendor order's lines still
open at the merchant, a later one adds its number to the same merchant fulfilment (partial shipments
cannot be expressed in WooCommerce).

**Trigger by hand** with these params:

* `order_ids` — only the vendor orders of these merchant orders (`gid://shopify/Order/123`, `123` or `#1001`), whatever the watermark
* `vendors` — only these vendors; empty = all
* `dry_run` — decide and log everything, write nothing to the merchant store, move no watermark

**Read the log of `sync_vendor_tracking`**: one line per (order, vendor, shipment),
`tracking order #1001 → vendor 'Acme Tools' shipment <key>: <outcome> — <why>`, the outcome one of
written, unchanged, waiting (no tracking at the vendor yet), failed (retried on the next run).

Scheduled like `order_sync`: ticks every 5 minutes, syncs on the `sync_frequency_minutes` grid.
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
    dag_id="tracking_sync",
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
def tracking_sync() -> None:
    @task
    def validate_settings() -> list[dict[str, Any]]:
        """Stop the run before any write when settings, vendors, connections or the ledger are wrong;
        returns the vendors to read."""
        from ordersync.schedule import sync_slot

        context = get_current_context()
        env, run = _run()
        dag_run = context["dag_run"]
        due, why = sync_slot(env.settings.sync_frequency_minutes, dag_run.run_type, dag_run.run_after)
        if not due:
            raise AirflowSkipException(why)
        from ordersync.tracking import validate

        return validate(env, run)

    @task(map_index_template="{{ vendor }}", max_active_tis_per_dagrun=8)
    def sync_vendor_tracking(work: dict[str, Any]) -> dict[str, Any]:
        """One vendor: its changed vendor orders' shipments written back to the merchant orders, exactly once."""
        from ordersync.tracking import sync_vendor

        get_current_context()["vendor"] = work["vendor"]  # type: ignore[typeddict-unknown-key]
        env, run = _run()
        result = sync_vendor(env, run, work["vendor"])
        if result["failed"]:
            raise RuntimeError(f"{result['failed']} shipment(s) failed for vendor {work['vendor']} in order(s) "
                               f"{', '.join(result['failed_orders'])}; see the lines above, they are retried on "
                               "the next run")
        return result

    @task(trigger_rule="all_done")
    def summary() -> dict[str, Any]:
        """Totals; moves each vendor's tracking watermark when that vendor's task decided all its orders.

        The run's only leaf: it fails when an upstream task failed, so the run shows failed.
        """
        context = get_current_context()
        ti = context["ti"]
        upstream = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id],
                                      task_ids=["validate_settings", "sync_vendor_tracking"])
        states = upstream.get(ti.run_id, {})
        failed = sorted(task for task, state in states.items() if state in ("failed", "upstream_failed"))
        vendors = ti.xcom_pull(task_ids="validate_settings")
        if vendors is None:
            if failed:
                raise AirflowFailException("validate_settings failed: nothing was read or written "
                                           "(its log names the problem)")
            return {"skipped": "not a sync slot; nothing was read or written"}
        from ordersync.tracking import summarise

        results = [r for r in (ti.xcom_pull(task_ids="sync_vendor_tracking") or []) if r]
        env, run = _run()
        outcome = summarise(env, run, results, [w["vendor"] for w in vendors], failed)
        if failed:
            raise AirflowFailException(f"failed task(s): {', '.join(failed)}; vendors not fully decided: "
                                       f"{', '.join(outcome['undecided']) or 'none'} (their watermark stays; "
                                       "retried on the next run)")
        return outcome

    synced = sync_vendor_tracking.expand(work=validate_settings())
    synced >> summary()


tracking_sync()
