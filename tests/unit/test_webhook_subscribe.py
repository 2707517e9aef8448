"""ordersync_webhooks' rule, without a store: which subscriptions are ours, what a run creates, updates or leaves,
the callback URL and secret checks, and WooCommerce's secret fingerprint."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from ordersync.events import subscribe, topics
from ordersync.events.subscribe import CREATED, UNCHANGED, UPDATED, Store, Subscription, plan
from ordersync.platforms.base import StoreConnection, StoreError
from ordersync.settings import SettingsError

BASE = "https://airflow.example.com"
URL = f"{BASE}/ordersync/webhooks/ordersync_merchant"


# -- callback_url ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "   ", None, 7])
def test_callback_url_is_required_and_named(value):
    with pytest.raises(SettingsError, match="param callback_url is required"):
        subscribe.check_callback_url(value)


@pytest.mark.parametrize(
    "value", ["ftp://airflow.example.com", "airflow.example.com", "https://", "http:///x"]
)
def test_callback_url_must_be_http_with_a_host(value):
    with pytest.raises(SettingsError, match=r"param callback_url must be an http\(s\) URL"):
        subscribe.check_callback_url(value)


def test_callback_url_is_the_base_not_a_receiver_address():
    with pytest.raises(SettingsError, match="base URL, not a receiver address"):
        subscribe.check_callback_url(URL)
    with pytest.raises(SettingsError, match="no query or fragment"):
        subscribe.check_callback_url(f"{BASE}/?x=1")


def test_callback_url_keeps_a_path_prefix_and_drops_the_trailing_slash():
    assert subscribe.check_callback_url(f" {BASE}/ ") == BASE
    assert subscribe.check_callback_url("http://127.0.0.1:8080/airflow/") == "http://127.0.0.1:8080/airflow"
    assert topics.callback_url(BASE, "ordersync_merchant") == URL


# -- ownership ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, ours",
    [
        (URL, True),
        ("https://old-host:8443/prefix/ordersync/webhooks/ordersync_merchant/", True),
        ("http://127.0.0.1:1/ordersync/webhooks/ordersync_merchant", True),
        ("https://airflow.example.com/ordersync/webhooks/ordersync_vendor_acme", False),  # another store's
        ("https://airflow.example.com/ordersync/webhooks/xordersync_merchant", False),
        ("https://erp.example.com/hooks/orders", False),
        ("pubsub://project:topic", False),
        ("", False),
    ],
)
def test_ours_is_the_receiver_path_for_this_connection(url, ours):
    assert subscribe.is_ours(url, "ordersync_merchant") is ours


# -- the plan -------------------------------------------------------------------------------------------------
def _actions(p: subscribe.Plan) -> dict[str, tuple[str, str | None]]:
    return {s.topic: (s.action, s.current.id if s.current else None) for s in p.steps}


def test_an_empty_store_gets_every_topic_created():
    p = plan("ordersync_merchant", topics.MERCHANT_TOPICS, URL, [])
    assert [s.topic for s in p.steps] == list(topics.MERCHANT_TOPICS)
    assert {s.action for s in p.steps} == {CREATED} and p.notes == []


def test_ours_at_the_address_in_order_is_unchanged_and_the_others_are_left_alone():
    existing = [
        Subscription("1", "orders/create", URL),
        Subscription("2", "orders/create", "https://erp.example.com/hooks"),  # not ours
        Subscription("3", "orders/paid", "https://erp.example.com/hooks"),  # not ours: ours must be created
    ]
    p = plan("ordersync_merchant", ["orders/create", "orders/paid"], URL, existing)
    assert _actions(p) == {"orders/create": (UNCHANGED, "1"), "orders/paid": (CREATED, None)}


def test_a_changed_callback_url_or_an_issue_is_an_update_in_place():
    existing = [
        Subscription("1", "orders/create", "https://old.example.com/ordersync/webhooks/ordersync_merchant"),
        Subscription("2", "orders/paid", URL, issues=("it was sent as XML, not JSON",)),
    ]
    p = plan("ordersync_merchant", ["orders/create", "orders/paid"], URL, existing)
    assert _actions(p) == {"orders/create": (UPDATED, "1"), "orders/paid": (UPDATED, "2")}
    why = {s.topic: s.why for s in p.steps}
    assert (
        why["orders/create"]
        == "it delivered to https://old.example.com/ordersync/webhooks/ordersync_merchant"
    )
    assert why["orders/paid"] == "it was sent as XML, not JSON"


def test_of_two_of_ours_the_one_at_the_address_is_kept_and_the_other_reported():
    old = "https://old.example.com/ordersync/webhooks/ordersync_merchant"
    existing = [Subscription("1", "orders/create", old), Subscription("2", "orders/create", URL)]
    p = plan("ordersync_merchant", ["orders/create"], URL, existing)
    assert _actions(p) == {"orders/create": (UNCHANGED, "2")}
    assert len(p.notes) == 1 and "subscription 1 also delivers to " + old in p.notes[0]


def test_ours_for_a_topic_not_listed_is_reported_not_touched():
    existing = [Subscription("9", "ORDERS_DELETE", URL)]
    p = plan("ordersync_merchant", ["orders/create"], URL, existing)
    assert _actions(p) == {"orders/create": (CREATED, None)}
    assert p.notes and "ordersync does not subscribe to this topic" in p.notes[0]


# -- stores and secrets ---------------------------------------------------------------------------------------
def _vendor(name, platform, conn_id, enabled=True):
    return SimpleNamespace(vendor=name, platform=platform, conn_id=conn_id, enabled=enabled)


def test_the_merchant_and_each_enabled_vendor_connection_once():
    found, notes = subscribe.stores(
        "ordersync_merchant",
        [
            _vendor("Acme Tools", "shopify", "ordersync_vendor_acme"),
            _vendor("Acme Outlet", "shopify", "ordersync_vendor_acme"),
            _vendor("Bolt Supply", "woocommerce", "ordersync_vendor_bolt"),
            _vendor("Gone Ltd", "woocommerce", "ordersync_vendor_gone", enabled=False),
        ],
    )
    assert [(s.conn_id, s.role, s.platform) for s in found] == [
        ("ordersync_merchant", "merchant", "shopify"),
        ("ordersync_vendor_acme", "vendor", "shopify"),
        ("ordersync_vendor_bolt", "vendor", "woocommerce"),
    ]
    assert found[1].label == "vendor Acme Tools, Acme Outlet (shopify, ordersync_vendor_acme)"
    assert found[0].topics() == topics.MERCHANT_TOPICS
    assert found[1].topics() == topics.VENDOR_TOPICS["shopify"]
    assert found[2].topics() == topics.VENDOR_TOPICS["woocommerce"]
    assert notes == [
        "vendor 'Gone Ltd' (ordersync_vendor_gone) is disabled: its subscriptions are left as they are"
    ]
    assert Store.from_dict(found[2].as_dict()) == found[2]


@pytest.mark.parametrize("extra", [{}, {"webhook_secret": ""}, {"webhook_secret": None}])
def test_a_connection_without_webhook_secret_is_refused_naming_it(extra):
    conn = StoreConnection("ordersync_vendor_bolt", "http://x", extra=extra)
    with pytest.raises(SettingsError) as raised:
        subscribe.webhook_secret(conn)
    assert "connection ordersync_vendor_bolt has no webhook_secret" in str(raised.value)
    assert "404" in str(raised.value)


# -- one store, with a fake platform --------------------------------------------------------------------------
class FakeStore:
    """A store's subscriptions in memory; counts the writes."""

    def __init__(self, existing=(), fail_topics=()):
        self.subs = {s.id: s for s in existing}
        self.writes: list[tuple[str, str, str]] = []
        self.fail_topics = set(fail_topics)
        self.calls = 0
        self.closed = False

    def existing(self):
        self.calls += 1
        return list(self.subs.values())

    def create(self, topic, url):
        self.calls += 1
        if topic in self.fail_topics:
            raise StoreError(f"store: {topic} refused")
        sub = Subscription(str(len(self.subs) + 100), topic, url)
        self.subs[sub.id] = sub
        self.writes.append(("create", topic, url))
        return sub

    def update(self, current, url):
        self.calls += 1
        sub = Subscription(current.id, current.topic, url)
        self.subs[sub.id] = sub
        self.writes.append(("update", current.topic, url))
        return sub

    def close(self):
        self.closed = True


@pytest.fixture
def fake(monkeypatch):
    holder = {"store": FakeStore()}

    def opener(platform, conn, label, secret, policy=None):
        assert secret == "whsec"
        return holder["store"]

    monkeypatch.setattr(subscribe.registry, "open_subscriptions", opener)
    return holder


MERCHANT = Store("ordersync_merchant", "merchant", "shopify", "merchant store (ordersync_merchant)")
CONN = StoreConnection("ordersync_merchant", "http://shop", password="t", extra={"webhook_secret": "whsec"})


def test_first_run_creates_second_changes_nothing_new_url_updates(fake, caplog):
    caplog.set_level(logging.INFO, logger="ordersync")
    first = subscribe.sync_store(MERCHANT, CONN, BASE + "/", dry_run=False)
    assert first.counts == {CREATED: 6, UPDATED: 0, UNCHANGED: 0, "failed": 0}
    assert f"webhook ordersync_merchant orders/create: created → {URL}" in first.lines
    assert fake["store"].closed

    fake["store"].writes.clear()
    second = subscribe.sync_store(MERCHANT, CONN, BASE, dry_run=False)
    assert fake["store"].writes == [] and second.counts[UNCHANGED] == 6
    assert f"webhook ordersync_merchant orders/paid: unchanged → {URL}" in second.lines
    assert (
        "webhooks merchant store (ordersync_merchant): 6 subscription(s): 0 created, 0 updated, 6 unchanged"
        in caplog.text
    )

    moved = subscribe.sync_store(MERCHANT, CONN, "https://new.example.com", dry_run=False)
    assert moved.counts[UPDATED] == 6 and len(fake["store"].writes) == 6
    assert all(w[0] == "update" for w in fake["store"].writes)
    assert len(fake["store"].subs) == 6  # in place: no second subscription per topic


def test_dry_run_writes_nothing_and_says_what_it_would_do(fake):
    result = subscribe.sync_store(MERCHANT, CONN, BASE, dry_run=True)
    assert fake["store"].writes == [] and result.counts[CREATED] == 6
    assert f"webhook ordersync_merchant refunds/create: would create → {URL}" in result.lines
    assert result.summary().endswith("dry run: nothing was written")


def test_one_topic_failing_does_not_stop_the_others(fake):
    fake["store"] = FakeStore(fail_topics={"orders/paid"})
    with pytest.raises(StoreError, match="1 subscription\\(s\\) failed: orders/paid"):
        subscribe.sync_store(MERCHANT, CONN, BASE, dry_run=False)
    assert len(fake["store"].writes) == 5


def test_no_secret_no_request(fake):
    fake["store"] = None  # opening the store would fail the test
    with pytest.raises(SettingsError, match="ordersync_merchant has no webhook_secret"):
        subscribe.sync_store(
            MERCHANT, StoreConnection("ordersync_merchant", "http://shop"), BASE, dry_run=False
        )


# -- platforms ------------------------------------------------------------------------------------------------
def test_every_shopify_topic_is_a_webhook_subscription_topic_of_the_schema():
    from ordersync_sandbox.schema import load_schema

    values = set(load_schema().get_type("WebhookSubscriptionTopic").values)
    wanted = set(topics.MERCHANT_TOPICS) | set(topics.VENDOR_TOPICS["shopify"])
    assert wanted <= set(topics.SHOPIFY_TOPIC_ENUM)
    assert {topics.SHOPIFY_TOPIC_ENUM[t] for t in wanted} <= values


def test_shopify_subscription_not_json_is_an_issue():
    from ordersync.platforms.shopify.webhooks import _subscription

    sub = _subscription(
        {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_PAID", "uri": URL, "format": "XML"}
    )
    assert sub.topic == "orders/paid" and sub.url == URL and sub.issues == ("it was sent as XML, not JSON",)
    other = _subscription({"id": "2", "topic": "ORDERS_DELETE", "uri": URL, "format": "JSON"})
    assert other.topic == "ORDERS_DELETE" and other.issues == ()


def test_woocommerce_secret_fingerprint_and_status():
    from ordersync.platforms.woocommerce.webhooks import WooSubscriptions, fingerprint, webhook_name

    woo = WooSubscriptions("http://woo", "ck", "cs", "vendor Bolt", "ordersync_vendor_bolt", "whsec")
    name = webhook_name("order.updated", "ordersync_vendor_bolt", "whsec")
    assert name == f"ordersync order.updated for ordersync_vendor_bolt [secret {fingerprint('whsec')}]"
    assert "whsec" not in name and fingerprint("whsec") != fingerprint("whsec2")

    def hook(**fields):
        return woo._subscription({"id": 5, "topic": "order.updated", "delivery_url": URL, **fields})

    assert hook(status="active", name=name).issues == ()
    assert (
        "WooCommerce stops a webhook after more than 5 failed deliveries"
        in hook(status="disabled", name=name).issues[0]
    )
    assert "paused" in hook(status="paused", name=name).issues[0]
    assert hook(status="active", name=webhook_name("order.updated", "x", "old")).issues == (
        "it was signed with another secret than the connection's webhook_secret; set again",
    )
    assert "not known" in hook(status="active", name="Order updated (by hand)").issues[0]
    woo.close()
