"""``ordersync_webhooks``: keep every store's webhook subscriptions pointing at ordersync's receiver.

For each store (the merchant's Shopify store and every enabled vendor's) ordersync wants one subscription per
topic of :mod:`ordersync.events.topics`, delivering to ``{callback_url}/ordersync/webhooks/{conn_id}``. A run
lists what the store has, then, per topic:

* **unchanged** — one of ours already delivers there, and is in order (Shopify: JSON; WooCommerce: active,
  signed with the connection's current ``webhook_secret``);
* **updated** — one of ours delivers elsewhere (``callback_url`` changed) or is not in order (a Shopify
  subscription in XML, a WooCommerce webhook disabled after failed deliveries or paused, or signed with
  another secret): it is changed in place, keeping its id;
* **created** — none of ours exists for the topic.

**Ours** is a subscription whose address ends with ``/ordersync/webhooks/{conn_id}`` for this store's
``conn_id``, whatever the host in front of it: a changed ``callback_url`` is an update, not a second
subscription. Every other subscription (another app's, an address of the operator's own) is left alone, and
so is one of ours for a topic ordersync does not list; when two of ours share a topic, the one to keep is the
one that already delivers to the right address, and the others are reported, never deleted.

A second run finds everything unchanged and writes nothing; a dry run lists and reports, and writes nothing.

The platform packages provide a :class:`SubscriptionStore` (``Platform.open_subscriptions`` in the registry);
this module holds the rule, the plan and the log lines, typed plain Python.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from ordersync.events import topics
from ordersync.platforms import registry
from ordersync.platforms.base import StoreConnection, StoreError
from ordersync.platforms.http import RetryPolicy
from ordersync.settings import SettingsError

log = logging.getLogger("ordersync")

SECRET_KEY = "webhook_secret"  # the connection's extra key the receiver verifies deliveries with

CREATED, UPDATED, UNCHANGED, FAILED = "created", "updated", "unchanged", "failed"
WOULD = {CREATED: "would create", UPDATED: "would update", UNCHANGED: UNCHANGED}


@dataclass(frozen=True)
class Subscription:
    """One webhook subscription as a store holds it, in platform-free terms.

    ``topic`` is the operator's name (``orders/create``, ``order.updated``); ``issues`` is what the platform
    found wrong with it apart from its address (each an operator-readable phrase), empty when it is in order.
    """

    id: str
    topic: str
    url: str
    issues: tuple[str, ...] = ()


class SubscriptionStore(Protocol):
    """What a platform provides to keep one store's webhook subscriptions (see ``Platform.open_subscriptions``)."""

    calls: int

    def existing(self) -> list[Subscription]:
        """Every subscription the store holds (for Shopify: those of ordersync's app), all pages."""
        ...

    def create(self, topic: str, url: str) -> Subscription: ...

    def update(self, current: Subscription, url: str) -> Subscription:
        """``current`` delivering to ``url`` and in order (its issues mended), keeping its id and topic."""
        ...

    def close(self) -> None: ...


# -- the rule -------------------------------------------------------------------------------------------------
def check_callback_url(value: Any) -> str:
    """The param ``callback_url`` without a trailing slash; :class:`SettingsError` naming it when it is empty,
    not an http(s) URL with a host, or already one of the receiver's addresses."""
    raw = value.strip() if isinstance(value, str) else ""
    example = "e.g. https://airflow.example.com"
    if not raw:
        raise SettingsError(
            "param callback_url is required: the public base URL of the Airflow API server, which the "
            f"stores' webhooks are sent to ({example})"
        )
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"param callback_url must be an http(s) URL with a host, got {raw!r} ({example}: the public "
            "base URL of the Airflow API server)"
        )
    if parts.query or parts.fragment:
        raise SettingsError(f"param callback_url must have no query or fragment, got {raw!r} ({example})")
    if "/ordersync/webhooks" in parts.path:
        raise SettingsError(
            f"param callback_url is the Airflow API server's base URL, not a receiver address: got {raw!r}; "
            f"ordersync appends {topics.WEBHOOK_PATH} itself"
        )
    return raw.rstrip("/")


def is_ours(url: str, conn_id: str) -> bool:
    """A subscription is ordersync's for this store when its address ends with the receiver's path for
    ``conn_id``, whatever scheme, host or prefix comes before it (so a changed ``callback_url`` is found)."""
    path = urlsplit(url.strip()).path.rstrip("/")
    return path.endswith(topics.WEBHOOK_PATH.format(conn_id=conn_id))


def webhook_secret(conn: StoreConnection) -> str:
    """The connection's extra ``webhook_secret``; :class:`SettingsError` when it has none: the receiver answers
    404 to every delivery for a connection without one, so subscribing it would only make the store retry
    (and WooCommerce disable the webhook)."""
    secret = conn.extra.get(SECRET_KEY)
    if not isinstance(secret, str) or not secret.strip():
        raise SettingsError(
            f"connection {conn.conn_id} has no {SECRET_KEY} in its extra: ordersync's receiver would answer "
            f"404 to every delivery for it, so none of its subscriptions was created or changed. Set extra "
            f'"{SECRET_KEY}" (Shopify: the app\'s client secret; WooCommerce: a long random string, which '
            "ordersync gives the store)"
        )
    return secret


def validate(callback_url: Any, load_env: Callable[[], Any], merchant_conn_id: str) -> list[dict[str, str]]:
    """``validate_settings``: the param ``callback_url`` first (before anything is read), then the settings,
    vendors and connections (``load_env``, which raises on a problem); returns the stores to subscribe. A
    configuration problem is written to the log in plain words before it is raised."""
    try:
        check_callback_url(callback_url)
    except SettingsError as exc:
        log.error("configuration problem, nothing was read or written: %s", exc)
        raise
    env = load_env()
    found, notes = stores(merchant_conn_id, env.vendors.values())
    for note in notes:
        log.info("%s", note)
    log.info(
        "webhook subscriptions to check in %d store(s): %s", len(found), ", ".join(s.conn_id for s in found)
    )
    return [store.as_dict() for store in found]


@dataclass(frozen=True)
class Store:
    """One store to subscribe: the merchant's, or a vendor's (vendors sharing a connection are one store)."""

    conn_id: str
    role: str  # "merchant" or "vendor"
    platform: str
    label: str  # as the log names it: "merchant store (ordersync_merchant)"

    def topics(self) -> tuple[str, ...]:
        if self.role == "merchant":
            return topics.MERCHANT_TOPICS
        return topics.VENDOR_TOPICS.get(self.platform, ())

    def as_dict(self) -> dict[str, str]:
        return {"conn_id": self.conn_id, "role": self.role, "platform": self.platform, "label": self.label}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Store:
        return cls(conn_id=raw["conn_id"], role=raw["role"], platform=raw["platform"], label=raw["label"])


def stores(merchant_conn_id: str, vendors: Iterable[Any]) -> tuple[list[Store], list[str]]:
    """The merchant's store and each enabled vendor's (``VendorConfig``-like: vendor, platform, conn_id,
    enabled), one per connection; and a note per vendor left out (disabled, or a platform without topics)."""
    found = [Store(merchant_conn_id, "merchant", "shopify", f"merchant store ({merchant_conn_id})")]
    notes: list[str] = []
    names: dict[str, list[str]] = {}
    platform_of: dict[str, str] = {}
    for vendor in vendors:
        if not vendor.enabled:
            notes.append(
                f"vendor {vendor.vendor!r} ({vendor.conn_id}) is disabled: its subscriptions are left as they are"
            )
            continue
        if vendor.conn_id == merchant_conn_id:
            notes.append(
                f"vendor {vendor.vendor!r} uses the merchant's connection: subscribed as the merchant"
            )
            continue
        if not topics.VENDOR_TOPICS.get(vendor.platform):
            notes.append(f"vendor {vendor.vendor!r}: platform {vendor.platform} has no webhook topics listed")
            continue
        names.setdefault(vendor.conn_id, []).append(vendor.vendor)
        platform_of.setdefault(vendor.conn_id, vendor.platform)
    for conn_id, vendor_names in names.items():
        who = ", ".join(vendor_names)
        found.append(
            Store(
                conn_id, "vendor", platform_of[conn_id], f"vendor {who} ({platform_of[conn_id]}, {conn_id})"
            )
        )
    return found, notes


# -- the plan -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """What to do for one topic: ``create`` (``current`` None), ``update`` or ``unchanged`` ``current``."""

    topic: str
    action: str  # CREATED, UPDATED or UNCHANGED
    url: str
    current: Subscription | None = None
    why: str = ""


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # duplicates, ours for topics not listed; nothing written


def plan(conn_id: str, wanted: Sequence[str], url: str, existing: Sequence[Subscription]) -> Plan:
    """Per wanted topic one step against what the store holds; see the module's docstring for the rule."""
    result = Plan()
    ours = [s for s in existing if is_ours(s.url, conn_id)]
    for topic in wanted:
        mine = sorted(
            (s for s in ours if s.topic == topic), key=lambda s: (s.url != url, bool(s.issues), s.id)
        )
        if not mine:
            result.steps.append(Step(topic, CREATED, url))
            continue
        keep, *others = mine
        reasons = [] if keep.url == url else [f"it delivered to {keep.url}"]
        reasons += keep.issues
        if reasons:
            result.steps.append(Step(topic, UPDATED, url, keep, "; ".join(reasons)))
        else:
            result.steps.append(Step(topic, UNCHANGED, url, keep))
        for other in others:
            result.notes.append(
                f"{topic}: subscription {other.id} also delivers to {other.url} (a duplicate of "
                f"{keep.id}); left as is, remove it in the store's admin if it is not wanted"
            )
    for sub in ours:
        if sub.topic not in wanted:
            result.notes.append(
                f"{sub.topic}: subscription {sub.id} delivers to {sub.url} but ordersync does not subscribe "
                "to this topic; left as is"
            )
    return result


# -- one store ------------------------------------------------------------------------------------------------
@dataclass
class StoreResult:
    conn_id: str
    label: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: {CREATED: 0, UPDATED: 0, UNCHANGED: 0, FAILED: 0})
    lines: list[str] = field(default_factory=list)
    failed_topics: list[str] = field(default_factory=list)
    left_alone: int = 0  # subscriptions that are not ours
    calls: int = 0

    def summary(self) -> str:
        c = self.counts
        verbs = ("would be created", "would be updated") if self.dry_run else ("created", "updated")
        text = (
            f"webhooks {self.label}: {sum(c.values())} subscription(s): {c[CREATED]} {verbs[0]}, "
            f"{c[UPDATED]} {verbs[1]}, {c[UNCHANGED]} unchanged"
        )
        if c[FAILED]:
            text += f", {c[FAILED]} failed ({', '.join(self.failed_topics)})"
        text += f"; {self.left_alone} not ordersync's, left alone"
        return text + ("; dry run: nothing was written" if self.dry_run else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "label": self.label,
            "dry_run": self.dry_run,
            **self.counts,
            "failed_topics": self.failed_topics,
            "lines": self.lines,
        }


def line(conn_id: str, topic: str, outcome: str, url: str, why: str = "") -> str:
    """The log line of one subscription: ``webhook <conn_id> <topic>: <outcome> → <url>[ — <why>]``."""
    return f"webhook {conn_id} {topic}: {outcome} → {url}" + (f" — {why}" if why else "")


def sync_store(
    store: Store,
    conn: StoreConnection,
    callback_url: str,
    *,
    dry_run: bool,
    policy: RetryPolicy | None = None,
) -> StoreResult:
    """Create or update ``store``'s subscriptions so each of its topics delivers to the receiver; log one line
    per subscription and a summary. Raises :class:`SettingsError` before any request when the connection has
    no ``webhook_secret``, :class:`StoreError` when the store cannot be listed or a subscription failed (the
    others were still done)."""
    try:
        secret = webhook_secret(conn)
    except SettingsError as exc:
        log.error("%s: %s", store.label, exc)
        raise
    url = topics.callback_url(check_callback_url(callback_url), store.conn_id)
    result = StoreResult(store.conn_id, store.label, dry_run)
    client = registry.open_subscriptions(store.platform, conn, store.label, secret, policy)
    try:
        existing = client.existing()
        result.left_alone = sum(1 for s in existing if not is_ours(s.url, store.conn_id))
        planned = plan(store.conn_id, store.topics(), url, existing)
        for step in planned.steps:
            _apply(client, store, step, result)
        for note in planned.notes:
            log.info("webhook %s %s", store.conn_id, note)
        result.calls = client.calls
    finally:
        client.close()
    log.info("%s", result.summary())
    if result.failed_topics:
        raise StoreError(
            f"{store.label}: {len(result.failed_topics)} subscription(s) failed: "
            f"{', '.join(result.failed_topics)}; see the lines above (a new run retries them)"
        )
    return result


def _apply(client: SubscriptionStore, store: Store, step: Step, result: StoreResult) -> None:
    outcome = step.action
    why = step.why
    if outcome == UPDATED and step.current is not None and step.current.url != step.url:
        why = f"{why}; the old address gets no more deliveries"
    try:
        if not result.dry_run:
            if outcome == CREATED:
                client.create(step.topic, step.url)
            elif outcome == UPDATED:
                assert step.current is not None
                client.update(step.current, step.url)
    except StoreError as exc:
        result.counts[FAILED] += 1
        result.failed_topics.append(step.topic)
        failed = line(store.conn_id, step.topic, FAILED, step.url, f"could not be {outcome}: {exc}")
        result.lines.append(failed)
        log.warning("%s", failed)
        return
    result.counts[outcome] += 1
    text = line(store.conn_id, step.topic, WOULD[outcome] if result.dry_run else outcome, step.url, why)
    result.lines.append(text)
    log.info("%s", text)


# -- the run --------------------------------------------------------------------------------------------------
def summarise(
    results: Sequence[dict[str, Any]], failed_stores: Sequence[str], dry_run: bool
) -> dict[str, Any]:
    """The run's totals over the stores' results (``StoreResult.as_dict``); logs every store's lines again, so
    the summary task's log holds the whole list, then one line of totals."""
    totals = {CREATED: 0, UPDATED: 0, UNCHANGED: 0, FAILED: 0}
    for result in results:
        for text in result["lines"]:
            log.info("%s", text)
        for key in totals:
            totals[key] += int(result.get(key, 0))
    verbs = ("would be created", "would be updated") if dry_run else ("created", "updated")
    text = (
        f"webhook subscriptions over {len(results) + len(failed_stores)} store(s): {totals[CREATED]} {verbs[0]}, "
        f"{totals[UPDATED]} {verbs[1]}, {totals[UNCHANGED]} unchanged"
    )
    if totals[FAILED]:
        text += f", {totals[FAILED]} failed"
    if failed_stores:
        text += f"; store(s) that failed (see their task's log): {', '.join(failed_stores)}"
    if dry_run:
        text += "; dry run: nothing was written"
    (log.warning if failed_stores or totals[FAILED] else log.info)("%s", text)
    return {**totals, "stores": len(results), "failed_stores": list(failed_stores), "dry_run": dry_run}
