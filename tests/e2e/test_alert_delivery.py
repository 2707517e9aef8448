"""Failure alerts end to end: a real SMTP server (aiosmtpd) and a real HTTP receiver on loopback get one alert
per failed run, listing each failed (order, vendor, operation) with the store's error and what to do."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ACME, BOLT, alert_settings

pytestmark = pytest.mark.e2e

OPS = "ops@marketplace.example"
SECRETS = (
    "shpat_test_merchant_SECRET",
    "shpat_test_acme_SECRET",
    "cs_test_bolt_SECRET",
    "smtp-SECRET-pw",
    "hook-secret",
)


def test_failed_run_sends_one_alert_by_email_and_webhook(world, receiver, mailbox):
    world.settings(**alert_settings(emails=[OPS]))
    refused = world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    down = world.order([(BOLT, "BOLT-M6-100", 2, "9.50")])
    fine = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00")])
    world.acme.add_fault("orderCreate", "http_error", status=401, times=1)  # the first create: bad token
    world.bolt.add_fault("POST /orders", "http_error", status=503, times=-1)  # the store is down
    result = world.run()
    assert result.state == "failed"
    assert result.outcome(fine["name"], ACME) == "pushed"

    # One e-mail, through the SMTP server, authenticated, to the operator.
    [mail] = mailbox.messages
    assert (
        mail["to"] == [OPS] and mail["from"] == "ordersync@marketplace.example" and mailbox.logins == [True]
    )
    subject = str(mail["message"]["Subject"])
    assert subject.startswith("[ordersync] order_sync run manual__") and "2 failure(s)" in subject
    [body] = mailbox.bodies()
    for needle in (
        refused["name"],
        down["name"],
        ACME,
        BOLT,
        "create",
        "HTTP 401",
        "HTTP 503",
        "API credentials",
        "ordersync_vendor_acme",
        "unreachable or busy",
        "ordersync_vendor_bolt",
    ):
        assert needle in body, needle
    assert fine["name"] not in body

    # One webhook document with the same items.
    [post] = receiver.received
    assert post["headers"]["X-Alert-Token"] == "hook-secret"
    doc = post["body"]
    assert doc["dag_id"] == "order_sync" and doc["failures"] == 2 and doc["subject"] == subject
    items = {a["order"]: a for a in doc["alerts"]}
    assert set(items) == {refused["name"], down["name"]}
    assert items[refused["name"]]["vendor"] == ACME and items[refused["name"]]["operation"] == "create"
    assert "HTTP 401" in items[refused["name"]]["message"]
    assert "API credentials" in items[refused["name"]]["suggestion"]
    assert items[down["name"]]["vendor"] == BOLT and "HTTP 503" in items[down["name"]]["message"]

    everything = body + json.dumps(doc) + subject
    for secret in SECRETS:
        assert secret not in everything

    # The ledger remembers the delivery: the run's summary, retried, would not send it again.
    from ordersync import alerts
    from ordersync.airflow.config import load_env

    env = load_env()
    key = world.last_run_key()
    assert env.ledger.alert_delivered(key) == {"email", "webhook"}
    again = alerts.deliver(env, key, "order_sync", alerts.for_run(env, key, "order_sync", {}))
    assert again["sent"] == [] and sorted(again["already"]) == ["email", "webhook"]
    assert len(mailbox.messages) == 1 and len(receiver.received) == 1

    # The next healthy run syncs both and alerts nothing.
    world.bolt.clear_faults()
    healthy = world.run()
    assert healthy.state == "success"
    assert (
        healthy.outcome(refused["name"], ACME) == "pushed" and healthy.outcome(down["name"], BOLT) == "pushed"
    )
    assert len(mailbox.messages) == 1 and len(receiver.received) == 1


def test_a_failure_mended_by_a_retry_is_not_alerted(world, receiver):
    """Within one run the push task's retry pushed what its first try could not: the run's alert is empty."""
    from ordersync import alerts
    from ordersync.airflow.config import load_env

    world.settings(**alert_settings())
    env = load_env()
    env.ledger.migrate()
    row = {"merchant_order_id": "gid://shopify/Order/1", "merchant_order_name": "#1001", "vendor": ACME}
    env.ledger.record_decisions(
        "order_sync/r1", [{**row, "outcome": "failed", "reason": "HTTP 503", "operation": "create"}]
    )  # try 1
    env.ledger.record_decisions(
        "order_sync/r1", [{**row, "outcome": "pushed", "reason": "created", "operation": ""}]
    )  # try 2
    assert alerts.run_failures(env, "order_sync/r1", "order_sync") == []
    assert (
        alerts.deliver(
            env, "order_sync/r1", "order_sync", alerts.for_run(env, "order_sync/r1", "order_sync", {})
        )["sent"]
        == []
    )
    assert receiver.received == []
    # A failure that stays failed after the retry is listed once, not once per try.
    env.ledger.record_decisions(
        "order_sync/r2", [{**row, "outcome": "failed", "reason": "HTTP 503", "operation": "create"}] * 3
    )
    assert len(alerts.run_failures(env, "order_sync/r2", "order_sync")) == 1


def test_webhook_down_fails_the_summary_and_a_retry_delivers_once(world, receiver, mailbox):
    world.settings(**alert_settings(emails=[OPS]))
    order = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    world.bolt.add_fault("POST /orders", "http_error", status=503, times=-1)
    receiver.fail_next = 1
    result = world.run()
    assert result.state == "failed" and result.task_states["summary"] == ["failed"]
    assert len(mailbox.messages) == 1 and receiver.received == []

    # Airflow retries the summary task: the webhook gets the alert, the e-mail is not sent twice.
    from ordersync import alerts
    from ordersync.airflow.config import load_env

    env = load_env()
    key = world.last_run_key()
    report = alerts.deliver(env, key, "order_sync", alerts.for_run(env, key, "order_sync", {}))
    assert report["sent"] == ["webhook"] and report["already"] == ["email"]
    [post] = receiver.received
    assert [a["order"] for a in post["body"]["alerts"]] == [order["name"]]
    assert len(mailbox.messages) == 1


def test_unreachable_merchant_store_alerts_the_failed_fetch(world, receiver):
    """The merchant store is unreachable: fetch_orders fails as a whole and the alert names it and the fix."""
    world.settings(**alert_settings())
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.merchant.add_fault("orders", "http_error", status=401, times=-1)
    result = world.run()
    assert result.state == "failed"
    [post] = receiver.received
    [item] = post["body"]["alerts"]
    assert item["kind"] == "task_failed" and item["operation"] == "fetch_orders"
    assert "HTTP 401" in item["message"] and "ordersync_merchant" in item["suggestion"]
    assert "shpat_test_merchant_SECRET" not in json.dumps(post)


def test_alerts_disabled_sends_nothing_but_logs(world, receiver, mailbox):
    world.settings(failure_alerts={"enabled": False, "emails": [OPS], "webhook_conn_id": "ordersync_alerts"})
    order = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    world.bolt.add_fault("POST /orders", "http_error", status=503, times=-1)
    result = world.run()
    assert result.state == "failed" and result.outcome(order["name"], BOLT) == "failed"
    assert mailbox.messages == [] and receiver.received == []
    assert any("failure_alerts.enabled is false" in line for line in result.lines)


def test_emails_without_an_smtp_connection_stop_the_run_before_any_write(world, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    world.settings(**alert_settings(emails=[OPS], webhook=False))
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    result = world.run()
    assert result.state == "failed" and result.task_states["validate_settings"] == ["failed"]
    assert any("connection smtp_default" in line and "failure_alerts.emails" in line for line in result.lines)
    assert world.vendor_writes() == []


def test_deadline_callback_alerts_once(world, receiver, mailbox):
    """What Airflow's scheduler calls when a run is still going at its deadline (DAGRUN_QUEUED_AT + 30 min)."""
    from ordersync.airflow.deadline import missed

    world.ledger().migrate()
    world.settings(**alert_settings(emails=[OPS]))
    context = {
        "dag_run": {
            "dag_id": "order_sync",
            "dag_run_id": "scheduled__2026-11-27T08:00:00+00:00",
            "queued_at": "2026-11-27T08:00:01+00:00",
            "start_date": "2026-11-27T08:00:02+00:00",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-11-27T08:30:01+00:00"},
    }
    report = missed(context=context, minutes=30)
    assert sorted(report["sent"]) == ["email", "webhook"]
    [post] = receiver.received
    [item] = post["body"]["alerts"]
    assert item["kind"] == "deadline" and item["operation"] == "order_sync"
    assert "scheduled__2026-11-27T08:00:00+00:00" in item["message"] and "30 minutes" in item["message"]
    assert "sync_frequency_minutes" in item["suggestion"]
    assert "deadline" in mailbox.bodies()[0]
    assert missed(context=context, minutes=30)["sent"] == []  # the callback re-run does not repeat it
    assert len(receiver.received) == 1 and len(mailbox.messages) == 1


def test_a_run_stopped_by_validation_is_alerted_without_touching_the_ledger(world, receiver, monkeypatch):
    from pathlib import Path

    world.settings(**alert_settings())
    world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    monkeypatch.delenv("AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT")
    result = world.run()
    assert result.state == "failed" and result.task_states["validate_settings"] == ["failed"]
    [post] = receiver.received
    [item] = post["body"]["alerts"]
    assert item["kind"] == "task_failed" and item["operation"] == "validate_settings"
    assert "connection ordersync_vendor_bolt (vendor Bolt Supply) is not defined" in item["message"]
    assert "nothing was written" in item["suggestion"]
    assert not Path(world.ledger_url.removeprefix("sqlite:///")).exists()
