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
cancelled, refunded (a merchant refund recorded on the vendor order, no money moved there), unchanged,
manual (line items changed, or a refund the vendor platform cannot take: a human must act), held, skipped,
failed.

Scheduled runs tick every 5 minutes; only the ticks on the `sync_frequency_minutes` grid sync, the others
skip at `validate_settings` (so changing the setting needs no code edit and no parse-time Variable read).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from ordersync.airflow import dagkit as kit


@dag(**kit.dag_arguments("order_sync", __doc__))
def order_sync() -> None:
    @task(multiple_outputs=False)
    def validate_settings() -> dict[str, Any]:
        """Stop the run before any write when settings, vendors, connections or the ledger are wrong."""
        from ordersync.orders.validate import validate

        with kit.reported():
            env, run = kit.run_env()
            kit.skip_unless_sync_slot(env)
            return validate(env, run)

    @task(multiple_outputs=False)
    def fetch_orders(checked: dict[str, Any]) -> dict[str, Any]:
        """Merchant orders changed since the watermark (or the named ones) into the ledger's run scratch."""
        from ordersync.orders.fetch import fetch

        with kit.reported():
            return fetch(*kit.run_env(vendor_connections=False))

    @task
    def decide(fetched: dict[str, Any]) -> list[dict[str, Any]]:
        """Order-level rules and the split: per vendor, the orders to create, update or cancel."""
        from ordersync.orders.decide import decide as decide_orders

        with kit.reported():
            return decide_orders(*kit.run_env(vendor_connections=False))

    @task(map_index_template="{{ vendor }}", max_active_tis_per_dagrun=8, multiple_outputs=False)
    def push_vendor_orders(work: dict[str, Any]) -> dict[str, Any]:
        """One vendor's share: create its new orders exactly once, forward edits and cancellations."""
        from ordersync.orders.push import push_vendor

        kit.set_map_label(work["vendor"])
        env, run = kit.run_env(work["vendor"])
        return kit.vendor_result(push_vendor(env, run, work["vendor"], work), "order(s)")

    @task(trigger_rule="all_done", multiple_outputs=False)
    def summary() -> dict[str, Any]:
        """Totals for the run; moves the watermark once every fetched order is decided.

        The run's only leaf: it sends the run's one alert (failed orders with what to do, notices, failed tasks)
        and fails when an upstream task failed, so the run shows failed.
        """
        ti = get_current_context()["ti"]
        failed = kit.failed_upstream(["validate_settings", "fetch_orders", "decide", "push_vendor_orders"])
        kit.alert_run(failed, mapped=("push_vendor_orders",))
        skipped = kit.fail_if_not_validated(ti.xcom_pull(task_ids="validate_settings"), failed)
        if skipped:
            return skipped
        from ordersync.orders.summary import summarise

        env, run = kit.run_env(vendor_connections=False)
        outcome = summarise(
            env,
            run,
            ti.xcom_pull(task_ids="fetch_orders"),
            ti.xcom_pull(task_ids="decide") is not None,
            kit.mapped_results("push_vendor_orders"),
        )
        return kit.fail_run_if(
            failed, outcome, f"failed orders: {', '.join(outcome['failed']) or 'none recorded'}"
        )

    checked = validate_settings()
    work = decide(fetch_orders(checked))
    pushed = push_vendor_orders.expand(work=work)
    pushed >> summary()


order_sync_dag = kit.local_test_without_deadline(order_sync())
