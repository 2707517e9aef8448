"""Local stores for ordersync's tests and demo: a Shopify GraphQL Admin store and a WooCommerce
REST v3 store, each served over real HTTP on 127.0.0.1, and each delivering webhooks as the real
platform does.

    from ordersync_sandbox import Sandbox
    with Sandbox() as sb:
        merchant = sb.add_shopify("merchant", token="shpat_m", webhook_secret="shpss_m")
        bolt = sb.add_woo("bolt", key="ck_x", secret="cs_y", webhook_secret="whsec_bolt")
        name, value = sb.connection_env(bolt, "ordersync_vendor_bolt")
        merchant.subscribe("orders/create", "http://127.0.0.1:9000/hooks")  # or webhookSubscriptionCreate
        merchant.add_order(lineItems=[{"title": "Hammer", "quantity": 1, "price": "24.00"}])
        assert merchant.wait_for_deliveries(timeout=5)
        merchant.webhook_deliveries()  # one entry per attempt: topic, url, event id, status, ...

Webhooks in one place (details in ``webhooks.py``, ``shopify.py``, ``woocommerce.py``, ``server.py``):

* subscriptions through the real APIs (Shopify ``webhookSubscriptionCreate/Update/Delete`` and
  ``webhookSubscriptions``; WooCommerce ``/wp-json/wc/v3/webhooks``) or ``store.subscribe(topic, url)``;
* a store change is delivered in the background (one queue and thread per store, never blocking the
  request that caused it), signed (base64 HMAC-SHA256 of the raw body: Shopify with the store's
  ``webhook_secret``, WooCommerce with the webhook's own secret);
* Shopify retries a failure (non-2xx or no answer within ``webhook_timeout`` = 5 s) on
  ``store.webhook_retry_delays`` (default ``shopify_webhooks.COMPRESSED_RETRY_DELAYS``, 8 retries in
  4.55 s; ``PRODUCTION_RETRY_DELAYS`` is the real 8 retries over 4 hours) with the same event and
  webhook ids, and removes the subscription when the last retry fails; WooCommerce never retries,
  counts consecutive failures and disables the webhook (see ``woocommerce.py``);
* faults (drop, duplicate, delay, reorder), pause/resume, the delivery log and
  ``store.wait_for_deliveries(timeout)`` from Python (``BaseStore``) or ``/_sandbox/webhook*``.

``connection_env`` puts the store's ``webhook_secret`` (when it has one) in the connection's
``extra`` as ``"webhook_secret"``: for Shopify the key every delivery is signed with, for WooCommerce
the secret ``store.subscribe`` registers by default (a webhook created over REST without ``secret``
gets a random one, as on WooCommerce, so a client registering its own webhooks should send it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .base import BaseStore, Request, Response
from .server import FAULT_KINDS, Fault, StoreServer
from .webhooks import WEBHOOK_FAULT_KINDS, Delivery, WebhookDispatcher, WebhookFault, sign
from .woocommerce import WooStore

if TYPE_CHECKING:  # pragma: no cover
    from .shopify import ShopifyStore

__all__ = [
    "BaseStore",
    "Delivery",
    "FAULT_KINDS",
    "Fault",
    "Request",
    "Response",
    "Sandbox",
    "ShopifyStore",
    "StoreServer",
    "WEBHOOK_FAULT_KINDS",
    "WebhookDispatcher",
    "WebhookFault",
    "WooStore",
    "sign",
]

DEFAULT_SHOPIFY_API_VERSION = "2026-10"


def __getattr__(name: str) -> Any:
    # ShopifyStore pulls in graphql-core and the schema: import it only when asked for.
    if name == "ShopifyStore":
        from .shopify import ShopifyStore

        return ShopifyStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Sandbox:
    """A set of stores, each on its own loopback server. Stores start serving as they are added.

    ``port_base``: give the n-th added store port ``port_base + n`` instead of a free port.
    """

    def __init__(self, port_base: int | None = None, verbose: bool = False) -> None:
        self.port_base = port_base
        self.verbose = verbose
        self.stores: dict[str, BaseStore] = {}
        self.servers: dict[str, StoreServer] = {}

    # --- lifecycle ---

    def start(self) -> Sandbox:
        """(Re)start every store's server; adding a store starts its server anyway."""
        for server in self.servers.values():
            server.start()
        for store in self.stores.values():
            store.webhooks.start()
        return self

    def stop(self) -> None:
        """Stop the servers and the webhook threads (queued deliveries wait for the next start)."""
        for server in self.servers.values():
            server.stop()
        for store in self.stores.values():
            store.webhooks.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- stores ---

    def add_store(self, store: BaseStore, port: int | None = None) -> BaseStore:
        """Serve any :class:`BaseStore` (its ``url`` is set once it listens)."""
        if store.name in self.stores:
            raise ValueError(f"a store named {store.name!r} already exists")
        if port is None:
            port = self.port_base + len(self.stores) if self.port_base is not None else 0
        server = StoreServer(store, port=port, verbose=self.verbose)
        server.start()
        self.stores[store.name] = store
        self.servers[store.name] = server
        return store

    def add_shopify(self, name: str, token: str, port: int | None = None, **kwargs: Any) -> ShopifyStore:
        from .shopify import ShopifyStore

        store = ShopifyStore(name, token=token, **kwargs)
        self.add_store(store, port)
        return store

    def add_woo(
        self,
        name: str,
        key: str,
        secret: str,
        rate_limit_per_second: float | None = None,
        port: int | None = None,
        **kwargs: Any,
    ) -> WooStore:
        store = WooStore(name, key, secret, rate_limit_per_second=rate_limit_per_second, **kwargs)
        self.add_store(store, port)
        return store

    def clear_logs(self) -> None:
        for store in self.stores.values():
            store.clear_log()

    # --- Airflow wiring ---

    @staticmethod
    def connection_env(store: BaseStore, conn_id: str) -> tuple[str, str]:
        """``("AIRFLOW_CONN_<CONN_ID>", json)`` for an Airflow connection to ``store``."""
        if not store.url:
            raise ValueError(f"store {store.name!r} is not served yet (no url)")
        secret = getattr(store, "webhook_secret", None)
        if store.platform == "shopify":
            conn: dict[str, Any] = {
                "conn_type": "http",
                "host": store.url,
                "password": store.token,
                "extra": {"api_version": getattr(store, "api_version", None) or DEFAULT_SHOPIFY_API_VERSION},
            }
            if secret:
                conn["extra"]["webhook_secret"] = secret
        elif store.platform == "woocommerce":
            conn = {
                "conn_type": "http",
                "host": store.url,
                "login": store.consumer_key,
                "password": store.consumer_secret,
            }
            if secret:
                conn["extra"] = {"webhook_secret": secret}
        else:
            raise ValueError(f"no Airflow connection format for platform {store.platform!r}")
        return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)
