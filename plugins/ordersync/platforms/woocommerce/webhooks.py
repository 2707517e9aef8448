"""A WooCommerce store's webhooks (REST API v3, ``/wp-json/wc/v3/webhooks``), for ``ordersync_webhooks``.

WooCommerce signs each delivery with the webhook's own ``secret``, which ordersync sets to the connection's
``webhook_secret``. The API never returns a webhook's secret, so it cannot be compared; instead the webhook's
name carries a short fingerprint of the secret it was given (``ordersync order.updated for <conn_id>
[secret 1a2b3c4d5e6f]``, the first 12 hex digits of a SHA-256 over a fixed label and the secret). A webhook of
ours whose name carries the fingerprint of the current secret is unchanged; one with another fingerprint, or
none (made by hand, or before the secret changed), is updated with the secret and the new name. So a second
run changes nothing, and a changed ``webhook_secret`` reaches the store on the next run. The fingerprint gives
away nothing an admin of the store cannot already read: WooCommerce shows the secret itself on the webhook's
page.

A webhook WooCommerce ``disabled`` (it does so after more than 5 failed deliveries in a row: the receiver was down or
answered an error) or an admin ``paused`` delivers nothing; ordersync sets it ``active`` again.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

from ordersync.events.subscribe import Subscription
from ordersync.platforms.http import OverHttp, PermanentError, RetryPolicy, TransientError
from ordersync.platforms.woocommerce.vendor import rest_v3

PAGE_SIZE = 100
MAX_PAGES = 50
FINGERPRINT = re.compile(r"\[secret ([0-9a-f]{12})\]")
STATUS_ISSUES = {
    "disabled": "it was disabled: WooCommerce stops a webhook after more than 5 failed deliveries in a row; re-activated "
    "(changes while it was off reach ordersync through the scheduled runs)",
    "paused": "it was paused in the store's admin; re-activated",
}


def fingerprint(secret: str) -> str:
    """12 hex digits that tell one ``webhook_secret`` from another, recorded in the webhook's name."""
    return hashlib.sha256(b"ordersync webhook secret\0" + secret.encode("utf-8")).hexdigest()[:12]


def webhook_name(topic: str, conn_id: str, secret: str) -> str:
    return f"ordersync {topic} for {conn_id} [secret {fingerprint(secret)}]"


class WooSubscriptions(OverHttp):
    """One WooCommerce store's webhooks, over :class:`JsonHttp` (retries, ``Retry-After``)."""

    def __init__(
        self,
        host: str,
        key: str,
        secret: str,
        label: str,
        conn_id: str,
        webhook_secret: str,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.label = label
        self.conn_id = conn_id
        self.webhook_secret = webhook_secret
        self.http = rest_v3(host, key, secret, label, timeout=timeout, policy=policy, sleep=sleep)

    def _subscription(self, hook: Any) -> Subscription:
        if not isinstance(hook, dict) or "id" not in hook:
            raise TransientError(f"{self.label}: /webhooks answered with something that is not a webhook")
        issues = []
        status = str(hook.get("status") or "")
        if status != "active":
            issues.append(STATUS_ISSUES.get(status, f"its status was {status or 'empty'}; re-activated"))
        found = FINGERPRINT.search(str(hook.get("name") or ""))
        if found is None:
            issues.append("its secret is not known to be the connection's webhook_secret; set again")
        elif found.group(1) != fingerprint(self.webhook_secret):
            issues.append("it was signed with another secret than the connection's webhook_secret; set again")
        return Subscription(
            id=str(hook["id"]),
            topic=str(hook.get("topic") or ""),
            url=str(hook.get("delivery_url") or ""),
            issues=tuple(issues),
        )

    def existing(self) -> list[Subscription]:
        found: list[Subscription] = []
        for page in range(1, MAX_PAGES + 1):
            _, _, hooks = self.http.request(
                "GET", "/webhooks", params={"per_page": PAGE_SIZE, "page": page, "status": "all"}
            )
            if not isinstance(hooks, list):
                raise TransientError(f"{self.label}: GET /webhooks: expected a JSON list")
            found += [self._subscription(hook) for hook in hooks]
            if len(hooks) < PAGE_SIZE:
                return found
        raise PermanentError(
            f"{self.label}: more than {MAX_PAGES * PAGE_SIZE} webhooks; not all could be read"
        )

    def _body(self, topic: str, url: str) -> dict[str, Any]:
        return {
            "name": webhook_name(topic, self.conn_id, self.webhook_secret),
            "delivery_url": url,
            "secret": self.webhook_secret,
            "status": "active",
        }

    def create(self, topic: str, url: str) -> Subscription:
        _, _, hook = self.http.request(
            "POST", "/webhooks", json_body={**self._body(topic, url), "topic": topic}, idempotent=False
        )
        if not isinstance(hook, dict) or "id" not in hook:
            raise TransientError(
                f"{self.label}: POST /webhooks answered without a webhook id", maybe_committed=True
            )
        return self._subscription(hook)

    def update(self, current: Subscription, url: str) -> Subscription:
        _, _, hook = self.http.request(
            "PUT", f"/webhooks/{current.id}", json_body=self._body(current.topic, url)
        )
        return self._subscription(hook)
