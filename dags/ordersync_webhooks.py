"""
### ordersync_webhooks — point the stores' webhooks at ordersync's receiver

Creates or updates the webhook subscriptions of the merchant's Shopify store (`ordersync_merchant`) and of
every **enabled** vendor's store (Variable `ordersync_vendors`), so that each topic ordersync listens to is
delivered to `{callback_url}/ordersync/webhooks/{conn_id}`, the receiver inside the Airflow API server.
Manual runs only: run it once when setting webhooks up, again after changing the API server's address or a
`webhook_secret`, and whenever WooCommerce has disabled a webhook. Running it again changes nothing.

**Trigger by hand** with these params:

* `callback_url` — **required**: the public base URL of the Airflow API server, as the stores reach it
  (e.g. `https://airflow.example.com`; Shopify accepts `https` only)
* `dry_run` — list each store's subscriptions and say what would be created or updated; write nothing

**Topics**: the merchant's `orders/create`, `orders/paid`, `orders/updated`, `orders/edited`,
`orders/cancelled`, `refunds/create`; a Shopify vendor's `fulfillments/create`, `fulfillments/update`,
`orders/updated`, `orders/cancelled`; a WooCommerce vendor's `order.updated`.

**Which subscriptions are ordersync's**: those whose address ends with `/ordersync/webhooks/{conn_id}` for
that store's connection, whatever host comes before it. They are updated in place when they deliver elsewhere
(the `callback_url` changed), when a Shopify one is not JSON, when a WooCommerce one is `disabled` (WooCommerce
stops a webhook after more than 5 failed deliveries: this run re-activates it, and says so) or `paused`, or when it was
given another secret. Every other subscription is left alone; none is ever deleted.

**Secrets**: every store's connection needs `webhook_secret` in its extra, the key the receiver checks each
delivery's signature with (Shopify: the app's client secret; WooCommerce: any long random string, which this
DAG gives each webhook). A store without one fails its task at once, naming the connection, with nothing
written to that store (its deliveries would be answered 404); the other stores are still done, and the run
fails at `summary`. WooCommerce never returns a webhook's secret, so the webhook's name records a 12-digit
fingerprint of the secret it was given: a changed `webhook_secret` is sent on the next run, an unchanged one
is not sent again.

**Read the log of `subscribe_store`** (one mapped task per store) or of `summary` (all of them): one line per
subscription, `webhook <conn_id> <topic>: <outcome> → <url>[ — <why>]`, the outcome one of created, updated,
unchanged (dry run: would create, would update), failed; then the totals.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from ordersync.airflow import dagkit as kit


@dag(
    dag_id="ordersync_webhooks",
    schedule=None,
    start_date=kit.START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["ordersync"],
    default_args=kit.DEFAULT_ARGS,
    params={
        "callback_url": Param(
            "",
            type="string",
            title="Callback URL",
            description="Required. The public base URL of the Airflow API server, as the stores reach it "
            "(e.g. https://airflow.example.com); each store's webhooks go to "
            "{callback_url}/ordersync/webhooks/{conn_id}.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="List the subscriptions and log what would be created or updated; write nothing.",
        ),
    },
)
def ordersync_webhooks() -> None:
    @task
    def validate_settings() -> list[dict[str, Any]]:
        """The callback URL, settings, vendors and connections; returns the stores to subscribe."""
        from ordersync.airflow.config import MERCHANT_CONN_ID, load_env_or_explain
        from ordersync.events.subscribe import validate

        with kit.permanent_configuration_errors():
            callback_url = get_current_context()["params"].get("callback_url")
            return validate(callback_url, load_env_or_explain, MERCHANT_CONN_ID)

    @task(map_index_template="{{ store }}", max_active_tis_per_dagrun=4, multiple_outputs=False)
    def subscribe_store(store: dict[str, Any]) -> dict[str, Any]:
        """One store: its subscriptions created or updated to deliver to the receiver; one line each."""
        from ordersync.airflow.config import load_env_or_explain
        from ordersync.events.subscribe import Store, sync_store

        context = get_current_context()
        context["store"] = store["conn_id"]  # type: ignore[typeddict-unknown-key]
        params = context["params"]
        with kit.permanent_configuration_errors():
            env = load_env_or_explain()
            conn = env.merchant if store["role"] == "merchant" else env.connections[store["conn_id"]]
            result = sync_store(
                Store.from_dict(store),
                conn,
                params.get("callback_url"),
                dry_run=bool(params.get("dry_run")),
                policy=env.policy,
            )
        return result.as_dict()

    @task(trigger_rule="all_done", multiple_outputs=False)
    def summary() -> dict[str, Any]:
        """Every store's lines and the totals; fails the run when a store (or the validation) failed."""
        from ordersync.events.subscribe import summarise

        ti = get_current_context()["ti"]
        failed = kit.failed_upstream(["validate_settings", "subscribe_store"])
        validated = ti.xcom_pull(task_ids="validate_settings")
        skipped = kit.fail_if_not_validated(validated, failed)
        if skipped:
            return skipped
        conn_ids = [s["conn_id"] for s in validated or []]
        failed_stores = [
            conn_ids[int(t.rsplit("_", 1)[1])] if t.rsplit("_", 1)[-1].isdigit() else t
            for t in failed
            if t.startswith("subscribe_store")
        ]
        outcome = summarise(
            kit.mapped_results("subscribe_store"),
            failed_stores,
            bool(get_current_context()["params"].get("dry_run")),
        )
        return kit.fail_run_if(failed, outcome, f"store(s) not done: {', '.join(failed_stores)}")

    subscribe_store.expand(store=validate_settings()) >> summary()


ordersync_webhooks_dag = ordersync_webhooks()
