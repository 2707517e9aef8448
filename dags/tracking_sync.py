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

**How a run goes**: `validate_settings` → `sync_vendor_tracking` (one mapped task per vendor, in parallel:
reads that vendor's store only) → `write_merchant_fulfillments` (one task: every merchant read and write of
the run, so one client spends the merchant's API cost bucket instead of one per vendor competing for it)
→ `summary` (watermarks, the run's alert).

**Read the log** — one line per (order, vendor, shipment),
`tracking order #1001 → vendor 'Acme Tools' shipment <key>: <outcome> — <why>`, the outcome one of
written, unchanged, waiting (no tracking at the vendor yet), failed (retried on the next run), cancelled (the
vendor cancelled its order: reported once with a `vendor_cancelled` alert, the merchant order tagged
`ordersync-vendor-cancelled`, nothing written back from it).
`sync_vendor_tracking` logs what needs no merchant call (waiting, unchanged, unreadable) and how many vendor
orders it staged for the merchant; `write_merchant_fulfillments` logs every write (written, failed).

Scheduled like `order_sync`: ticks every 5 minutes, syncs on the `sync_frequency_minutes` grid.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from ordersync.airflow import dagkit as kit

WRITER = "write_merchant_fulfillments"


@dag(**kit.dag_arguments("tracking_sync", __doc__))
def tracking_sync() -> None:
    @task
    def validate_settings() -> list[dict[str, Any]]:
        """Stop the run before any write when settings, vendors, connections or the ledger are wrong;
        returns the vendors to read."""
        from ordersync.tracking.read import validate

        with kit.reported():
            env, run = kit.run_env()
            kit.skip_unless_sync_slot(env)
            return validate(env, run)

    @task(map_index_template="{{ vendor }}", max_active_tis_per_dagrun=8, multiple_outputs=False)
    def sync_vendor_tracking(work: dict[str, Any]) -> dict[str, Any]:
        """One vendor: its changed vendor orders' shipments written back to the merchant orders, exactly once."""
        from ordersync.tracking.read import sync_vendor

        kit.set_map_label(work["vendor"])
        env, run = kit.run_env(work["vendor"])
        return kit.vendor_result(sync_vendor(env, run, work["vendor"]), "shipment(s)")

    @task(trigger_rule="all_done", multiple_outputs=False)
    def write_merchant_fulfillments() -> dict[str, Any]:
        """The run's one merchant client: every staged shipment written to its merchant order, exactly once.

        Runs after every vendor task, also when some failed (the others' shipments are written). Fails at the
        end, naming the orders, when a write failed; the vendor's watermark then stays and the next run reads
        those orders again.
        """
        ti = get_current_context()["ti"]
        if ti.xcom_pull(task_ids="validate_settings") is None:
            raise AirflowSkipException("validate_settings did not pass: nothing was staged, nothing to write")
        from ordersync.tracking.write import write_staged

        with kit.reported():
            env, run = kit.run_env(vendor_connections=False)
            outcome = write_staged(env, run)
        ti.xcom_push(key="outcome", value=outcome)  # kept when the task fails below: the summary's totals
        if outcome["failed"]:
            raise RuntimeError(
                f"{outcome['failed']} shipment(s) could not be written to the merchant: "
                f"{', '.join(outcome['failed_orders'])}; see the lines above, they are retried on the next run"
            )
        return outcome

    @task(trigger_rule="all_done", multiple_outputs=False)
    def summary() -> dict[str, Any]:
        """Totals; moves each vendor's tracking watermark when that vendor's task decided all its orders.

        The run's only leaf: it sends the run's one alert (failed write-backs with what to do, vendors that could
        not be read) and fails when an upstream task failed, so the run shows failed.
        """
        ti = get_current_context()["ti"]
        failed = kit.failed_upstream(["validate_settings", "sync_vendor_tracking", WRITER])
        kit.alert_run(failed, mapped=("sync_vendor_tracking",))
        vendors = ti.xcom_pull(task_ids="validate_settings")
        skipped = kit.fail_if_not_validated(vendors, failed)
        if skipped:
            return skipped
        from ordersync.tracking.read import summarise

        env, run = kit.run_env(vendor_connections=False)
        outcome = summarise(
            env,
            run,
            kit.mapped_results("sync_vendor_tracking"),
            [w["vendor"] for w in vendors],
            ti.xcom_pull(task_ids=WRITER, key="outcome"),
        )
        return kit.fail_run_if(
            failed,
            outcome,
            f"vendors not fully decided: {', '.join(outcome['undecided']) or 'none'} (their watermark stays)",
        )

    synced = sync_vendor_tracking.expand(work=validate_settings())
    synced >> write_merchant_fulfillments() >> summary()


tracking_sync_dag = kit.local_test_without_deadline(tracking_sync())
