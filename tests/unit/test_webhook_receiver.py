"""The receiver's decisions (events/receive.py) and the inbox's bookkeeping (ledger/inbox.py), on a real ledger.

The receiver inside the real API server, with real store deliveries, is tests/stack/test_event_driven.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ordersync.events.receive import MAX_BODY, Source, judge, signature
from ordersync.ledger import Ledger
from ordersync.ledger.inbox import STALE_CLAIM

SECRET = "whsec_test"
MERCHANT = Source("ordersync_merchant", "merchant", "shopify", SECRET)
SHOPIFY_VENDOR = Source("ordersync_vendor_acme", "vendor", "shopify", SECRET)
WOO_VENDOR = Source("ordersync_vendor_bolt", "vendor", "woocommerce", SECRET)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def shopify(topic: str, payload: dict, secret: str = SECRET, **headers: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": signature(secret, body),
        "x-shopify-event-id": headers.pop("event_id", "evt-1"),
        "x-shopify-triggered-at": headers.pop("triggered_at", NOW.isoformat()),
        **headers,
    }


def woo(payload: dict, secret: str = SECRET, topic: str = "order.updated") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"x-wc-webhook-topic": topic, "x-wc-webhook-signature": signature(secret, body)}


ORDER = {"id": 501, "admin_graphql_api_id": "gid://shopify/Order/501", "name": "#1001"}


@pytest.mark.parametrize(
    "topic, payload, order_id",
    [
        ("orders/paid", ORDER, "gid://shopify/Order/501"),
        ("orders/updated", {"id": 502}, "gid://shopify/Order/502"),
        ("refunds/create", {"id": 9, "order_id": 503}, "gid://shopify/Order/503"),
        ("orders/edited", {"order_edit": {"id": 4, "order_id": 504}}, "gid://shopify/Order/504"),
    ],
)
def test_a_signed_merchant_delivery_becomes_an_order_sync_event(topic, payload, order_id):
    body, headers = shopify(topic, payload)
    verdict = judge(MERCHANT, body, headers, NOW)
    assert verdict.status == 200 and verdict.event is not None
    assert verdict.event.dag_id == "order_sync" and verdict.event.order_id == order_id
    assert verdict.event.dedup_key == f"{topic}:evt-1"


def test_vendor_deliveries_become_tracking_sync_events_for_the_vendor_order():
    body, headers = shopify("fulfillments/create", {"id": 77, "order_id": 900})
    event = judge(SHOPIFY_VENDOR, body, headers, NOW).event
    assert (
        event is not None and event.dag_id == "tracking_sync" and event.order_id == "gid://shopify/Order/900"
    )
    body, headers = woo({"id": 42, "date_modified_gmt": "2026-12-03T11:59:00"})
    event = judge(WOO_VENDOR, body, headers, NOW).event
    assert event is not None and event.dag_id == "tracking_sync" and event.order_id == "42"
    assert event.dedup_key == "order.updated:42@2026-12-03T11:59:00"


def test_bad_signatures_are_401_and_name_no_event():
    body, headers = shopify("orders/paid", ORDER, secret="someone-else")
    assert judge(MERCHANT, body, headers, NOW).status == 401
    body, headers = shopify("orders/paid", ORDER)
    del headers["x-shopify-hmac-sha256"]
    assert judge(MERCHANT, body, headers, NOW).status == 401
    body, headers = shopify("orders/paid", ORDER)
    assert judge(MERCHANT, body + b" ", headers, NOW).status == 401  # the signature covers the raw bytes
    body, headers = woo({"id": 1})
    assert judge(MERCHANT, body, headers, NOW).status == 401  # a WooCommerce header is not Shopify's
    verdicts = [judge(MERCHANT, b, h, NOW) for b, h in [shopify("orders/paid", ORDER, secret="x")]]
    assert all(v.event is None for v in verdicts)


def test_a_signed_body_that_is_not_json_is_400():
    body = b"<html>not json</html>"
    headers = {"x-shopify-topic": "orders/paid", "x-shopify-hmac-sha256": signature(SECRET, body)}
    verdict = judge(MERCHANT, body, headers, NOW)
    assert verdict.status == 400 and verdict.event is None


def test_woocommerce_activation_ping_is_200_and_records_nothing():
    verdict = judge(WOO_VENDOR, b"webhook_id=12", {}, NOW)
    assert verdict.status == 200 and verdict.event is None
    assert judge(MERCHANT, b"webhook_id=12", {}, NOW).status == 401  # Shopify sends no such ping


def test_topics_ordersync_does_not_act_on_and_replays_are_acknowledged_not_recorded():
    body, headers = shopify("products/update", {"id": 1})
    assert (judge(MERCHANT, body, headers, NOW).status, judge(MERCHANT, body, headers, NOW).event) == (
        200,
        None,
    )
    body, headers = shopify("fulfillments/create", {"id": 1, "order_id": 2})  # a vendor topic at the merchant
    assert judge(MERCHANT, body, headers, NOW).event is None
    old = (NOW - timedelta(days=3)).isoformat()
    body, headers = shopify("orders/paid", ORDER, triggered_at=old)
    verdict = judge(MERCHANT, body, headers, NOW)
    assert verdict.status == 200 and verdict.event is None and "replay" in verdict.message
    body, headers = woo({"id": 42, "date_modified_gmt": "2026-11-01T00:00:00"})
    assert judge(WOO_VENDOR, body, headers, NOW).event is None


def test_max_body_is_one_mebibyte():
    assert MAX_BODY == 1024 * 1024


# ---------------------------------------------------------------------------------------------------- the inbox
@pytest.fixture
def inbox(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    return ledger.inbox


def test_one_row_per_event_whatever_the_retries(inbox):
    assert inbox.record(
        "ordersync_merchant", "orders/paid:e1", "order_sync", "orders/paid", "gid://shopify/Order/1"
    )
    assert not inbox.record(
        "ordersync_merchant", "orders/paid:e1", "order_sync", "orders/paid", "gid://shopify/Order/1"
    )
    assert inbox.record(
        "ordersync_vendor_acme", "orders/paid:e1", "tracking_sync", "orders/paid", "gid://x/1"
    )
    assert len(inbox.rows()) == 2


def test_a_run_claims_what_waits_and_later_events_wait_for_the_next_run(inbox):
    for n in (1, 2):
        inbox.record("ordersync_merchant", f"k{n}", "order_sync", "orders/paid", f"gid://shopify/Order/{n}")
    inbox.record(
        "ordersync_vendor_acme", "v1", "tracking_sync", "fulfillments/create", "gid://shopify/Order/9"
    )
    first = inbox.claim("order_sync", "order_sync/run1")
    assert [e.order_id for e in first] == ["gid://shopify/Order/1", "gid://shopify/Order/2"]
    inbox.record("ordersync_merchant", "k3", "order_sync", "orders/paid", "gid://shopify/Order/3")
    assert [
        e.order_id for e in inbox.claim("order_sync", "order_sync/run1")
    ] == [  # a retried task: same + new
        "gid://shopify/Order/1",
        "gid://shopify/Order/2",
        "gid://shopify/Order/3",
    ]
    assert inbox.claim("order_sync", "order_sync/run2") == []  # taken by run1
    assert inbox.finish("order_sync/run1") == 3
    assert inbox.claim("order_sync", "order_sync/run2") == []
    assert [e.conn_id for e in inbox.pending("tracking_sync")] == ["ordersync_vendor_acme"]


def test_a_failed_run_gives_its_events_back_and_a_dead_runs_claim_expires(inbox):
    inbox.record("ordersync_merchant", "k1", "order_sync", "orders/paid", "gid://shopify/Order/1")
    inbox.claim("order_sync", "order_sync/run1")
    assert inbox.release("order_sync/run1") == 1
    assert [e.order_id for e in inbox.claim("order_sync", "order_sync/run2")] == ["gid://shopify/Order/1"]
    from sqlalchemy import update

    from ordersync.ledger.schema import webhook_inbox

    with inbox.engine.begin() as conn:  # run2 died an hour and more ago, without releasing
        conn.execute(
            update(webhook_inbox).values(claimed_at=datetime.now(UTC) - STALE_CLAIM - timedelta(minutes=1))
        )
    assert [e.order_id for e in inbox.claim("order_sync", "order_sync/run3")] == ["gid://shopify/Order/1"]


def test_a_scheduled_read_covers_older_waiting_events_only(inbox):
    inbox.record("ordersync_merchant", "old", "order_sync", "orders/paid", "gid://shopify/Order/1")
    cut = datetime.now(UTC)
    inbox.record("ordersync_merchant", "claimed", "order_sync", "orders/paid", "gid://shopify/Order/2")
    inbox.claim("order_sync", "order_sync/event-run")
    inbox.record("ordersync_merchant", "new", "order_sync", "orders/paid", "gid://shopify/Order/3")
    assert inbox.reconcile("order_sync", cut + timedelta(microseconds=1)) == 0  # row 1 was claimed with row 2
    inbox.release("order_sync/event-run")
    assert inbox.reconcile("order_sync", cut) == 1
    assert {r["order_id"]: r["outcome"] for r in inbox.rows()} == {
        "gid://shopify/Order/1": "reconciled",
        "gid://shopify/Order/2": None,
        "gid://shopify/Order/3": None,
    }
    assert inbox.counts() == {"order_sync:reconciled": 1, "order_sync:waiting": 2}
