"""Settings and vendors: defaults from include/rules, errors that name the key."""

from __future__ import annotations

import json

import pytest

from ordersync.settings import SettingsError, parse_settings, parse_vendors


def test_missing_variable_means_the_defaults_file():
    settings = parse_settings(None)
    assert settings.order_sync_enabled is True
    assert settings.push_only_if_paid is True
    assert settings.push_unmapped_products is False
    assert settings.override_customer_data is False
    assert settings.sync_frequency_minutes == 15
    assert settings.order_status_filter == []
    assert settings.order_push_platforms == ["shopify", "woocommerce"]
    assert settings.failure_alerts.enabled is True and settings.failure_alerts.emails == []


def test_defaults_come_from_the_rules_file(tmp_path, monkeypatch):
    from ordersync import settings as module

    rules = tmp_path / "rules"
    rules.mkdir()
    shipped = json.loads((module.rules_dir() / "default_settings.json").read_text())
    (rules / "default_settings.json").write_text(json.dumps({**shipped, "sync_frequency_minutes": 30}))
    monkeypatch.setenv("ORDERSYNC_RULES_DIR", str(rules))
    module.default_settings.cache_clear()
    try:
        assert parse_settings(None).sync_frequency_minutes == 30
        del shipped["initial_lookback_hours"]  # the file is the only source of defaults
        (rules / "default_settings.json").write_text(json.dumps(shipped))
        module.default_settings.cache_clear()
        with pytest.raises(
            SettingsError, match="default_settings.json has no value for initial_lookback_hours"
        ):
            parse_settings(None)
    finally:
        module.default_settings.cache_clear()


def test_override_needs_merchant_contact():
    with pytest.raises(SettingsError, match="merchant_contact is required when override_customer_data is on"):
        parse_settings(json.dumps({"override_customer_data": True}))
    ok = parse_settings(
        json.dumps(
            {
                "override_customer_data": True,
                "merchant_contact": {"name": "Ops", "email": "ops@example.com", "phone": "+1555"},
            }
        )
    )
    assert ok.merchant_contact.email == "ops@example.com"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"push_only_if_paid": 1}, "push_only_if_paid"),
        ({"sync_frequency_minutes": "15"}, "sync_frequency_minutes"),
        ({"sync_frequency_minutes": 20}, "sync_frequency_minutes"),
        ({"order_push_platforms": ["magento"]}, "order_push_platforms.0"),
        (
            {"merchant_contact": {"name": "x", "email": "not-an-email", "phone": "123"}},
            "merchant_contact.email",
        ),
        ({"failure_alerts": {"enabled": True, "sms": []}}, "failure_alerts.sms: unknown key"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_settings_name_the_key(raw, message):
    with pytest.raises(SettingsError) as err:
        parse_settings(json.dumps(raw))
    assert message in str(err.value)
    assert "ordersync_settings" in str(err.value)


def test_settings_not_json():
    with pytest.raises(SettingsError, match="not valid JSON"):
        parse_settings("{oops")


def test_vendors_parse_and_errors():
    vendors = parse_vendors(json.dumps([{"vendor": "Acme", "platform": "shopify", "conn_id": "c1"}]))
    assert vendors[0].enabled is True and vendors[0].location_id is None
    with pytest.raises(SettingsError, match=r"ordersync_vendors\[0\] \(Mag\): unknown platform 'magento'"):
        parse_vendors(json.dumps([{"vendor": "Mag", "platform": "magento", "conn_id": "c"}]))
    with pytest.raises(
        SettingsError, match=r"ordersync_vendors\[0\] \(Acme\) is invalid: conn_id: Field required"
    ):
        parse_vendors(json.dumps([{"vendor": "Acme", "platform": "shopify"}]))
    with pytest.raises(SettingsError, match="more than once: Acme"):
        parse_vendors(json.dumps([{"vendor": "Acme", "platform": "shopify", "conn_id": "a"}] * 2))
    with pytest.raises(SettingsError, match="is missing"):
        parse_vendors(None)
    with pytest.raises(SettingsError, match="JSON list"):
        parse_vendors(json.dumps({"vendor": "Acme"}))
