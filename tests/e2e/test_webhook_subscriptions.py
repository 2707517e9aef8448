"""``ordersync_webhooks`` end to end: Airflow runs the DAG (``dag.test``, and once the real ``airflow dags test``)
against the sandbox stores over real HTTP — the merchant (Shopify), Acme Tools (Shopify) and Bolt Supply
(WooCommerce) — and the stores' own subscription lists and request logs say what it did.

The callback URL is a loopback HTTP server answering 200, standing in for the Airflow API server: WooCommerce
pings a webhook's address when it is created.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ordersync_sandbox import sign
from tests.e2e.conftest import RunResult, run_collecting
from tests.support import ROOT

pytestmark = pytest.mark.e2e

MERCHANT, ACME, BOLT = "ordersync_merchant", "ordersync_vendor_acme", "ordersync_vendor_bolt"
MERCHANT_TOPICS = {
    "ORDERS_CREATE",
    "ORDERS_PAID",
    "ORDERS_UPDATED",
    "ORDERS_EDITED",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
}
ACME_TOPICS = {"FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE", "ORDERS_UPDATED", "ORDERS_CANCELLED"}
SUBSCRIPTION_WRITES = (
    "webhookSubscriptionCreate",
    "webhookSubscriptionUpdate",
    "POST /webhooks",
    "PUT /webhooks",
)


class ApiServer:
    """Loopback stand-in for the Airflow API server's receiver: answers 200 to every POST, records the paths."""

    def __init__(self) -> None:
        paths = self.paths = []
        posts = self.posts = []  # (path, headers, raw body)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                paths.append(self.path)
                posts.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def webhooks_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["ordersync_webhooks"]


SECRETS = {MERCHANT: "shpss_merchant_app_SECRET", ACME: "shpss_acme_app_SECRET", BOLT: "whsec_bolt_SECRET"}


def set_connection(world, store, conn_id: str, **extra: Any) -> None:
    """The sandbox's connection for ``store``, its extra ``webhook_secret`` set (or removed when None)."""
    name, value = world.sandbox.connection_env(store, conn_id)
    conn = json.loads(value)
    conn["extra"] = {**(conn.get("extra") or {}), **extra}
    conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
    world.monkeypatch.setenv(name, json.dumps(conn))


@pytest.fixture
def api():
    server = ApiServer()
    yield server
    server.stop()


@pytest.fixture
def hooks(world, webhooks_dag, api):
    """``world`` whose three stores' connections carry a ``webhook_secret``, with ``run(**conf)``."""
    for store, conn_id in ((world.merchant, MERCHANT), (world.acme, ACME), (world.bolt, BOLT)):
        store.webhook_secret = SECRETS[conn_id]  # Shopify signs with the app's secret: the same key
        set_connection(world, store, conn_id, webhook_secret=SECRETS[conn_id])
    world.api = api
    world.run_webhooks = lambda **conf: run(webhooks_dag, conf)
    return world


def run(dag, conf: dict[str, Any]) -> RunResult:
    return run_collecting(dag, {"callback_url": "", "dry_run": False, **conf})


def receiver(base: str, conn_id: str) -> str:
    return f"{base}/ordersync/webhooks/{conn_id}"


def outcomes(result: RunResult, conn_id: str) -> dict[str, str]:
    """topic -> outcome, from the ``webhook <conn_id> <topic>: <outcome> → <url>`` lines of one store's task (the
    summary repeats them: the first occurrence of each counts)."""
    found: dict[str, str] = {}
    for line in result.lines:
        prefix = f"webhook {conn_id} "
        if line.startswith(prefix) and ": " in line and " → " in line:
            topic, rest = line[len(prefix) :].split(": ", 1)
            found.setdefault(topic, rest.split(" → ", 1)[0])
    return found


def subscription_writes(world) -> list[str]:
    return [
        e["operation"]
        for store in (world.merchant, world.acme, world.bolt)
        for e in store.log()
        if e.get("write") and any(e["operation"].startswith(w) for w in SUBSCRIPTION_WRITES)
    ]


def shopify_subs(store) -> dict[str, tuple[str, str, str]]:
    return {s["topic"]: (s["id"], s["uri"], s["format"]) for s in store.subscriptions()}


def hooks_topics(kind: str) -> tuple[str, ...]:
    from ordersync.events import topics

    return topics.MERCHANT_TOPICS if kind == "merchant" else topics.VENDOR_TOPICS[kind]


def clear_logs(world) -> None:
    for store in (world.merchant, world.acme, world.bolt):
        store.clear_log()


# -- the tests ------------------------------------------------------------------------------------------------
def test_first_run_creates_every_subscription_and_a_second_run_changes_nothing(hooks):
    base = hooks.api.url
    first = hooks.run_webhooks(callback_url=base)
    assert first.state == "success", "\n".join(first.lines)

    merchant = shopify_subs(hooks.merchant)
    assert set(merchant) == MERCHANT_TOPICS
    assert {(uri, fmt) for _, uri, fmt in merchant.values()} == {(receiver(base, MERCHANT), "JSON")}
    acme = shopify_subs(hooks.acme)
    assert set(acme) == ACME_TOPICS
    assert {(uri, fmt) for _, uri, fmt in acme.values()} == {(receiver(base, ACME), "JSON")}
    [bolt] = hooks.bolt.subscriptions()
    assert (bolt["topic"], bolt["delivery_url"], bolt["status"]) == (
        "order.updated",
        receiver(base, BOLT),
        "active",
    )
    assert bolt["secret"] == SECRETS[BOLT]  # WooCommerce signs with it; the receiver checks it

    assert outcomes(first, MERCHANT) == {t: "created" for t in hooks_topics("merchant")}
    assert outcomes(first, ACME) == {t: "created" for t in hooks_topics("shopify")}
    assert outcomes(first, BOLT) == {"order.updated": "created"}
    line = f"webhook {BOLT} order.updated: created → {receiver(base, BOLT)}"
    assert line in first.lines
    assert any(
        "webhook subscriptions over 3 store(s): 11 created, 0 updated, 0 unchanged" in x for x in first.lines
    )
    assert receiver(base, BOLT) in [f"{base}{p}" for p in hooks.api.paths]  # WooCommerce's activation ping

    clear_logs(hooks)
    second = hooks.run_webhooks(callback_url=base + "/")  # a trailing slash is the same address
    assert second.state == "success", "\n".join(second.lines)
    assert subscription_writes(hooks) == []
    assert all(store.writes() == [] for store in (hooks.merchant, hooks.acme, hooks.bolt))
    assert outcomes(second, MERCHANT) == {t: "unchanged" for t in hooks_topics("merchant")}
    assert outcomes(second, ACME) == {t: "unchanged" for t in hooks_topics("shopify")}
    assert outcomes(second, BOLT) == {"order.updated": "unchanged"}
    assert any("0 created, 0 updated, 11 unchanged" in x for x in second.lines)
    assert shopify_subs(hooks.merchant) == merchant and shopify_subs(hooks.acme) == acme


def test_a_changed_callback_url_updates_every_subscription_in_place(hooks):
    old = hooks.api.url
    assert hooks.run_webhooks(callback_url=old).state == "success"
    before = {"merchant": shopify_subs(hooks.merchant), "acme": shopify_subs(hooks.acme)}
    [bolt_before] = hooks.bolt.subscriptions()
    clear_logs(hooks)

    new = "https://airflow.example.com/prefix"
    moved = hooks.run_webhooks(callback_url=new)
    assert moved.state == "success", "\n".join(moved.lines)
    assert outcomes(moved, MERCHANT) == {t: "updated" for t in hooks_topics("merchant")}
    assert outcomes(moved, BOLT) == {"order.updated": "updated"}
    for name, store, conn_id in (("merchant", hooks.merchant, MERCHANT), ("acme", hooks.acme, ACME)):
        after = shopify_subs(store)
        assert {t: s[0] for t, s in after.items()} == {t: s[0] for t, s in before[name].items()}  # same ids
        assert {s[1] for s in after.values()} == {receiver(new, conn_id)}
    [bolt] = hooks.bolt.subscriptions()
    assert bolt["id"] == bolt_before["id"] and bolt["delivery_url"] == receiver(new, BOLT)
    ops = subscription_writes(hooks)
    assert ops.count("webhookSubscriptionUpdate") == 10 and ops.count("PUT /webhooks/{id}") == 1
    assert "webhookSubscriptionCreate" not in ops and "POST /webhooks" not in ops
    assert any(
        f"webhook {MERCHANT} orders/paid: updated → {receiver(new, MERCHANT)} — it delivered to "
        f"{receiver(old, MERCHANT)}" in x
        for x in moved.lines
    )


def test_dry_run_says_what_it_would_do_and_writes_nothing(hooks):
    base = hooks.api.url
    dry = hooks.run_webhooks(callback_url=base, dry_run=True)
    assert dry.state == "success", "\n".join(dry.lines)
    assert subscription_writes(hooks) == [] and hooks.merchant.subscriptions() == []
    assert hooks.acme.subscriptions() == [] and hooks.bolt.subscriptions() == []
    assert outcomes(dry, MERCHANT) == {t: "would create" for t in hooks_topics("merchant")}
    assert outcomes(dry, BOLT) == {"order.updated": "would create"}
    assert any("11 would be created" in x and "dry run: nothing was written" in x for x in dry.lines)
    assert hooks.api.paths == []

    assert hooks.run_webhooks(callback_url=base).state == "success"
    hooks.bolt.update_webhook(hooks.bolt.subscriptions()[0]["id"], status="disabled")
    clear_logs(hooks)
    dry = hooks.run_webhooks(callback_url="https://elsewhere.example.com", dry_run=True)
    assert dry.state == "success" and subscription_writes(hooks) == []
    assert outcomes(dry, ACME) == {t: "would update" for t in hooks_topics("shopify")}
    assert hooks.bolt.subscriptions()[0]["status"] == "disabled"


def test_a_webhook_woocommerce_disabled_is_reactivated_and_the_log_says_so(hooks):
    base = hooks.api.url
    assert hooks.run_webhooks(callback_url=base).state == "success"
    [bolt] = hooks.bolt.subscriptions()
    hooks.bolt.update_webhook(
        bolt["id"], status="disabled"
    )  # as after more than 5 failed deliveries in a row
    clear_logs(hooks)

    again = hooks.run_webhooks(callback_url=base)
    assert again.state == "success", "\n".join(again.lines)
    [after] = hooks.bolt.subscriptions()
    assert (after["id"], after["status"], after["delivery_url"]) == (
        bolt["id"],
        "active",
        receiver(base, BOLT),
    )
    assert subscription_writes(hooks) == ["PUT /webhooks/{id}"]  # nothing else was touched
    [line] = {x for x in again.lines if x.startswith(f"webhook {BOLT} order.updated: updated")}
    assert "disabled" in line and "after more than 5 failed deliveries" in line and "re-activated" in line
    assert outcomes(again, MERCHANT) == {t: "unchanged" for t in hooks_topics("merchant")}

    # Deliveries flow again: an order change at Bolt reaches the receiver's address for Bolt.
    order = hooks.bolt.create_order(line_items=[{"product_id": hooks.bolt_bolts["id"], "quantity": 1}])
    hooks.bolt.update_order(order["id"], status="completed")

    assert hooks.bolt.wait_for_deliveries(10)
    events = [
        (headers, body)
        for path, headers, body in hooks.api.posts
        if path == f"/ordersync/webhooks/{BOLT}" and headers.get("X-WC-Webhook-Topic") == "order.updated"
    ]
    assert events, hooks.api.paths
    headers, body = events[-1]
    assert headers["X-WC-Webhook-Signature"] == sign(SECRETS[BOLT], body)  # the receiver would accept it


def test_a_changed_webhook_secret_is_sent_once(hooks):
    base = hooks.api.url
    assert hooks.run_webhooks(callback_url=base).state == "success"
    set_connection(hooks, hooks.bolt, BOLT, webhook_secret="whsec_bolt_ROTATED")
    clear_logs(hooks)

    rotated = hooks.run_webhooks(callback_url=base)
    assert rotated.state == "success", "\n".join(rotated.lines)
    assert hooks.bolt.subscriptions()[0]["secret"] == "whsec_bolt_ROTATED"
    assert outcomes(rotated, BOLT) == {"order.updated": "updated"}
    assert "another secret" in next(x for x in rotated.lines if x.startswith(f"webhook {BOLT} order.updated"))
    assert "whsec_bolt_ROTATED" not in "\n".join(rotated.lines)

    clear_logs(hooks)
    assert outcomes(hooks.run_webhooks(callback_url=base), BOLT) == {"order.updated": "unchanged"}
    assert subscription_writes(hooks) == []


def test_subscriptions_that_are_not_ordersyncs_are_left_alone(hooks):
    base = hooks.api.url
    foreign = hooks.merchant.subscribe("orders/create", "https://erp.example.com/hooks/orders")
    xml = hooks.acme.subscribe("orders/updated", receiver("https://old.example.com", ACME), format="XML")
    woo_foreign = hooks.bolt.subscribe("order.updated", f"{base}/somebody-else")

    result = hooks.run_webhooks(callback_url=base)
    assert result.state == "success", "\n".join(result.lines)
    merchant = {s["id"]: s for s in hooks.merchant.subscriptions()}
    assert merchant[foreign["id"]]["uri"] == "https://erp.example.com/hooks/orders"  # untouched
    assert len(merchant) == 7  # ours for six topics, and the foreign one
    acme = {s["id"]: s for s in hooks.acme.subscriptions()}
    assert (acme[xml["id"]]["uri"], acme[xml["id"]]["format"]) == (
        receiver(base, ACME),
        "JSON",
    )  # ours: mended
    assert len(acme) == 4
    bolt = {w["id"]: w for w in hooks.bolt.subscriptions()}
    assert bolt[woo_foreign["id"]]["delivery_url"] == f"{base}/somebody-else" and len(bolt) == 2
    assert outcomes(result, MERCHANT)["orders/create"] == "created"
    assert outcomes(result, ACME)["orders/updated"] == "updated"
    assert any(
        x.startswith("webhooks merchant store") and "1 not ordersync's, left alone" in x for x in result.lines
    )


def test_a_store_without_webhook_secret_fails_alone_and_says_why(hooks):
    set_connection(hooks, hooks.bolt, BOLT, webhook_secret=None)
    base = hooks.api.url

    result = hooks.run_webhooks(callback_url=base)
    assert result.state == "failed"
    assert sorted(result.task_states["subscribe_store"]) == ["failed", "success", "success"]
    assert result.tries["subscribe_store"] == [1, 1, 1]  # a configuration error is not retried
    assert result.task_states["summary"] == ["failed"]
    assert hooks.bolt.subscriptions() == [] and hooks.bolt.log() == []  # not even read
    assert set(shopify_subs(hooks.merchant)) == MERCHANT_TOPICS  # the other stores were done
    assert set(shopify_subs(hooks.acme)) == ACME_TOPICS
    text = "\n".join(result.lines)
    assert f"connection {BOLT} has no webhook_secret in its extra" in text and "404" in text
    assert f"store(s) that failed (see their task's log): {BOLT}" in text


@pytest.mark.parametrize("url", ["", "ftp://airflow.example.com"])
def test_callback_url_is_required_and_checked_before_any_request(hooks, url):
    result = hooks.run_webhooks(callback_url=url)
    assert result.state == "failed"
    assert result.task_states["validate_settings"] == ["failed"]
    text = "\n".join(result.lines)
    assert "param callback_url" in text
    assert all(store.log() == [] for store in (hooks.merchant, hooks.acme, hooks.bolt))


def test_airflow_dags_test_subscribes_as_an_operator_types_it(hooks):
    """``airflow dags test ordersync_webhooks -c '{"callback_url": ...}'``: the real command, twice."""
    from tests.e2e.test_airflow_cli import _tail, airflow_dags_test

    base = hooks.api.url
    done = airflow_dags_test("ordersync_webhooks", {"callback_url": base})
    assert done.returncode == 0, _tail(done)
    assert set(shopify_subs(hooks.merchant)) == MERCHANT_TOPICS and len(hooks.bolt.subscriptions()) == 1
    clear_logs(hooks)
    again = airflow_dags_test("ordersync_webhooks", {"callback_url": base})
    assert again.returncode == 0, _tail(again)
    assert subscription_writes(hooks) == []
    assert f"webhook {BOLT} order.updated: unchanged → {receiver(base, BOLT)}" in again.stdout + again.stderr
