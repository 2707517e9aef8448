"""A Shopify store's webhook subscriptions (GraphQL Admin 2026-10), for ``ordersync_webhooks``.

``webhookSubscriptions`` lists the subscriptions of the app whose token the connection holds (ordersync's),
every page; ``webhookSubscriptionCreate`` / ``webhookSubscriptionUpdate`` set ``uri`` (``callbackUrl`` is
deprecated) and ``format: JSON``. Shopify signs each delivery with the app's client secret, which is the
connection's ``webhook_secret``: nothing per subscription to send or compare.
"""

from __future__ import annotations

from typing import Any

from ordersync.events.subscribe import Subscription
from ordersync.events.topics import SHOPIFY_TOPIC_ENUM
from ordersync.platforms.http import OverHttp, PermanentError, TransientError
from ordersync.platforms.shopify.client import ShopifyGraphQL
from ordersync.platforms.shopify.parse import user_errors

PAGE_SIZE = 100  # WebhookSubscriptions costs about 3 + first (the test checks it)
MAX_PAGES = 50
FORMAT = "JSON"  # the receiver reads JSON bodies only
TOPIC_NAMES = {enum: name for name, enum in SHOPIFY_TOPIC_ENUM.items()}


def _subscription(node: dict[str, Any]) -> Subscription:
    issues = []
    if node.get("format") != FORMAT:
        issues.append(f"it was sent as {node.get('format')}, not JSON")
    topic = str(node.get("topic") or "")
    return Subscription(
        id=str(node["id"]),
        topic=TOPIC_NAMES.get(topic, topic),  # a topic ordersync does not use keeps Shopify's enum name
        url=str(node.get("uri") or ""),
        issues=tuple(issues),
    )


class ShopifySubscriptions(OverHttp):
    """One shop's webhook subscriptions, through the shop's :class:`ShopifyGraphQL` (retries, cost bucket)."""

    def __init__(self, gql: ShopifyGraphQL) -> None:
        self.gql = gql
        self.http = gql.http

    def existing(self) -> list[Subscription]:
        found: list[Subscription] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = self.gql.execute("WebhookSubscriptions", {"first": PAGE_SIZE, "after": after})
            connection = data["webhookSubscriptions"]
            found += [_subscription(node) for node in connection["nodes"]]
            page = connection["pageInfo"]
            if not page.get("hasNextPage"):
                return found
            after = page.get("endCursor")
        raise PermanentError(
            f"{self.gql.label}: more than {MAX_PAGES * PAGE_SIZE} webhook subscriptions; not all could be read"
        )

    def create(self, topic: str, url: str) -> Subscription:
        enum = SHOPIFY_TOPIC_ENUM.get(topic)
        if enum is None:
            raise PermanentError(f"{self.gql.label}: no Shopify webhook topic is known for {topic!r}")
        data = self.gql.execute("WebhookSubscriptionCreate", {"topic": enum, "uri": url}, mutation=True)
        return self._result(data["webhookSubscriptionCreate"], "webhookSubscriptionCreate", topic)

    def update(self, current: Subscription, url: str) -> Subscription:
        # Sets uri and format only, so an update with an unknown outcome is safe to send again.
        data = self.gql.execute("WebhookSubscriptionUpdate", {"id": current.id, "uri": url})
        return self._result(data["webhookSubscriptionUpdate"], "webhookSubscriptionUpdate", current.topic)

    def _result(self, payload: dict[str, Any], mutation: str, topic: str) -> Subscription:
        if payload.get("userErrors"):
            raise PermanentError(
                f"{self.gql.label}: {mutation} {topic} refused: "
                f"{user_errors(payload['userErrors'], 'webhookSubscription')}"
            )
        node = payload.get("webhookSubscription")
        if not node:
            raise TransientError(
                f"{self.gql.label}: {mutation} {topic} answered without a subscription", maybe_committed=True
            )
        return _subscription(node)
