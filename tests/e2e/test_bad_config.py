"""Bad settings, a missing connection or an unknown platform stop the run at its first task, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def operator_retries(world):
    """The tasks get Airflow retries, as in production: a configuration error must fail without using them."""
    world.with_task_retries(2)


def _assert_stopped_before_any_write(world, result, message: str) -> None:
    assert result.state == "failed"
    assert result.task_states["validate_settings"] == ["failed"]
    assert result.tries["validate_settings"] == [1], "a configuration error was retried"
    assert result.task_states["fetch_orders"] == ["upstream_failed"]
    errors = [line for line in result.lines if line.startswith("configuration problem")]
    assert errors and message in errors[0], result.lines
    assert world.vendor_writes() == []
    assert [e for e in world.merchant.requests] == []  # not even a read
    assert not Path(world.ledger_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"push_only_if_pad": True}, "push_only_if_pad: unknown key"),
        ({"push_only_if_paid": "yes"}, "push_only_if_paid: Input should be a valid boolean"),
        ({"sync_frequency_minutes": 7}, "sync_frequency_minutes"),
        ({"override_customer_data": True}, "merchant_contact is required when override_customer_data is on"),
        ({"order_status_filter": ["SHIPPED"]}, "order_status_filter.0"),
    ],
)
def test_bad_settings_name_the_problem(world, settings, message):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.settings(**settings)
    _assert_stopped_before_any_write(world, world.run(), message)


def test_settings_that_are_not_json(world, monkeypatch):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    monkeypatch.setenv("AIRFLOW_VAR_ORDERSYNC_SETTINGS", "{push_only_if_paid: true")
    _assert_stopped_before_any_write(world, world.run(), "Variable ordersync_settings is not valid JSON")


def test_missing_vendor_connection(world, monkeypatch):
    world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    monkeypatch.delenv("AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT")
    _assert_stopped_before_any_write(
        world, world.run(), "connection ordersync_vendor_bolt (vendor Bolt Supply) is not defined"
    )


def test_missing_merchant_connection(world, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ORDERSYNC_MERCHANT")
    _assert_stopped_before_any_write(world, world.run(), "connection ordersync_merchant")


def test_unknown_platform(world):
    vendors = [dict(v) for v in world.vendors] + [
        {"vendor": "Mag Co", "platform": "magento", "conn_id": "ordersync_vendor_mag", "enabled": True}
    ]
    world.set_vendors(vendors)
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    _assert_stopped_before_any_write(world, world.run(), "unknown platform 'magento'")


def test_vendors_variable_missing(world, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_ORDERSYNC_VENDORS")
    _assert_stopped_before_any_write(world, world.run(), "Variable ordersync_vendors is missing")


def test_vendors_param_naming_an_unknown_vendor(world):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    result = world.run(vendors=["Nobody Inc"])
    assert result.state == "failed" and result.task_states["validate_settings"] == ["failed"]
    assert world.vendor_writes() == []
    assert json.dumps(result.lines).count("Nobody Inc") >= 1


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            '{"vendor": "Acme Tools", "platform": "shopify", "conn_id": "ordersync_vendor_acme"}',
            "Variable ordersync_vendors must be a JSON list of vendor objects",
        ),
        (
            '["Acme Tools"]',
            'Variable ordersync_vendors[0] must be a vendor object ({"vendor": …, "platform": …, '
            '"conn_id": …}), got "Acme Tools"',
        ),
        (
            '[{"vendor": "Acme Tools", "platform": "shopify", "conn_id": "ordersync_vendor_acme"}, null]',
            "Variable ordersync_vendors[1] must be a vendor object",
        ),
        (
            '[{"vendor": "Acme Tools", "platform": "shopify", "conn_id": "ordersync_vendor_acme",}]',
            "Variable ordersync_vendors is not valid JSON",
        ),
    ],
)
def test_malformed_vendors(world, monkeypatch, raw, message):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    monkeypatch.setenv("AIRFLOW_VAR_ORDERSYNC_VENDORS", raw)
    _assert_stopped_before_any_write(world, world.run(), message)


def test_settings_that_are_not_an_object(world, monkeypatch):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    monkeypatch.setenv("AIRFLOW_VAR_ORDERSYNC_SETTINGS", '[{"push_only_if_paid": true}]')
    _assert_stopped_before_any_write(world, world.run(), "Variable ordersync_settings must be a JSON object")


def test_an_unreachable_ledger_is_retried(world, monkeypatch, capfd):
    """Not a configuration error: the database may be back in a minute, so Airflow's retries are used."""
    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.with_task_retries(1)
    monkeypatch.setenv("ORDERSYNC_LEDGER_CONNECT_SECONDS", "0")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORDERSYNC_LEDGER",
        json.dumps(
            {
                "conn_type": "generic",
                "extra": {"sqlalchemy_url": "postgresql+psycopg2://nobody:pw-SECRET@127.0.0.1:9/x"},
            }
        ),
    )
    result = world.run()
    assert result.state == "failed"
    assert result.task_states["validate_settings"] == ["failed"]
    assert result.tries["validate_settings"] == [2], "an unreachable ledger was not retried"
    task_log = "".join(capfd.readouterr())  # the task's error, as the task log shows it
    assert "the sync ledger at postgresql+psycopg2://nobody:***@127.0.0.1:9/x cannot be reached" in task_log
    assert "pw-SECRET" not in task_log
    assert world.vendor_writes() == []


@pytest.mark.parametrize(
    "vendor_settings, message",
    [
        (
            {"order_sync_enabled": False},
            "ordersync_vendors[1] (Bolt Supply) is invalid: settings.order_sync_enabled: unknown key",
        ),
        (
            {"push_only_if_pad": True},
            "ordersync_vendors[1] (Bolt Supply) is invalid: settings.push_only_if_pad: unknown key",
        ),
        ({"push_delay_minutes": "5"}, "settings.push_delay_minutes"),
        ({"vendor_shipping": "free"}, "settings.vendor_shipping"),
        (
            {"override_customer_data": True},
            "vendor 'Bolt Supply': settings.override_customer_data is on but there is no merchant_contact",
        ),
    ],
)
def test_bad_vendor_settings_name_the_vendor_and_the_key(world, vendor_settings, message):
    world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    world.set_vendors(
        [{**v, "settings": vendor_settings} if v["vendor"] == BOLT else v for v in world.vendors]
    )
    _assert_stopped_before_any_write(world, world.run(), message)
