"""What an alert says: the suggested fix for each kind of failure, and the alert's three renderings."""

from __future__ import annotations

import pytest

from ordersync.alerts import Alert, RunAlert, describe, for_run, suggest, task_failures


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "vendor Acme (shopify, c1): POST /graphql.json: HTTP 401: [API] Invalid API key or access token",
            "API credentials: Airflow connection c1",
        ),
        (
            "vendor Bolt (woocommerce, c2): POST /orders: HTTP 403: woocommerce_rest_cannot_create: Sorry",
            "API credentials: Airflow connection c1",
        ),
        (
            "vendor Acme: orderCreate refused: lineItems.0.variantId: Product variant does not exist",
            "check the SKU mapping",
        ),
        ("order is not paid (PENDING); push_only_if_paid is on", "payment status"),
        ("vendor Acme: POST /orders: HTTP 503: service_unavailable", "unreachable or busy"),
        ("vendor Acme: orderCreate: still THROTTLED after 20 waits", "unreachable or busy"),
        ("vendor Acme: POST /orders: no answer within 30s", "unreachable or busy"),
        ("(psycopg2.OperationalError) server closed the connection", "ordersync_ledger"),
        (
            "vendor Acme: orderCreate refused: email: is invalid",
            'trigger order_sync with order_ids=["#1001"]',
        ),
    ],
)
def test_each_failure_gets_the_fix_that_matches_it(message, expected):
    assert expected in suggest("create", message, "Acme", "c1", "#1001")


def test_tracking_fixes_point_at_both_stores_and_tracking_sync():
    fix = suggest("tracking", "fulfillmentCreate refused: nope", "Acme", "c1", "#1001")
    assert "tracking_sync" in fix and "merchant" in fix


def test_the_run_alert_renders_text_html_and_json_without_interpreting_content():
    items = (
        Alert("failed", "#1001", "Acme", "create", "HTTP 503 <b>{{ boom }}</b>", "wait"),
        Alert("manual", "#1002", "Bolt", "line_items", "2 × SKU-1", "by hand"),
    )
    alert = RunAlert("order_sync", "manual__1", items)
    assert alert.subject() == "[ordersync] order_sync run manual__1: 1 failure(s), 1 notice(s)"
    assert "&lt;b&gt;{{ boom }}&lt;/b&gt;" in alert.html() and "<b>{{" not in alert.html()
    assert "- failed: order #1001, vendor Acme, create: HTTP 503 <b>{{ boom }}</b>" in alert.text()
    doc = alert.document()
    assert doc["failures"] == 1 and [a["order"] for a in doc["alerts"]] == ["#1001", "#1002"]


def test_describe_masks_credentials_in_urls_and_bounds_length():
    text = describe(RuntimeError("cannot connect to postgresql://ops:hunter2@db:5432/ledger " + "x" * 900))
    assert "hunter2" not in text and "postgresql://***@db" in text and len(text) <= 500


def test_a_task_failed_as_a_whole_names_its_fix():
    assert [a.operation for a in task_failures({"fetch_orders": "HTTP 401"})] == ["fetch_orders"]
    assert "ordersync_merchant" in task_failures({"fetch_orders": "merchant: HTTP 401: bad"})[0].suggestion


class _Ledger:
    def __init__(self, rows):
        self.rows = rows

    def decisions_for_run(self, run_id):
        return self.rows

    def queued_alerts(self, run_id):
        return []


class _Env:
    def __init__(self, rows):
        self.ledger = _Ledger(rows)
        self.vendors = {}


def test_for_run_folds_mapped_task_indexes_and_skips_them_when_orders_are_listed():
    failed = {
        "merchant_order_id": "1",
        "merchant_order_name": "#1",
        "vendor": "Acme",
        "outcome": "failed",
        "reason": "HTTP 503",
        "operation": "create",
        "subject": None,
    }
    tasks = {"push_vendor_orders_0": "", "push_vendor_orders_1": ""}
    listed = for_run(_Env([failed]), "order_sync/r", "order_sync", tasks, ("push_vendor_orders",))
    assert [(a.kind, a.order) for a in listed] == [("failed", "#1")]
    bare = for_run(_Env([]), "order_sync/r", "order_sync", tasks, ("push_vendor_orders",))
    assert [(a.kind, a.operation) for a in bare] == [("task_failed", "push_vendor_orders")]
