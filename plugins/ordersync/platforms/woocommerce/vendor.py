"""A vendor's WooCommerce store through the REST API v3 (``/wp-json/wc/v3``)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ordersync.models import Mapping, VendorOrderDraft, VendorOrderRef, VendorOrderState
from ordersync.platforms.http import (
    JsonHttp,
    OverHttp,
    PermanentError,
    RetryPolicy,
    StoreError,
    TransientError,
)
from ordersync.platforms.woocommerce.payloads import MARKER_KEY, build_order_payload, update_payload
from ordersync.platforms.woocommerce.refunds import WooRefunds
from ordersync.tracking.carriers import shopify_company
from ordersync.tracking.model import Shipment, ShippedOrder, Tracking

SKU_BATCH = 50
PAGE_SIZE = 100
LOOKUP_MAX_PAGES = 20
LIVE_STATUS = "publish"  # a product's (or a variation's own) post status that can be sold
TRACKING_META_KEY = "_wc_shipment_tracking_items"  # the Shipment Tracking extension's order meta
TRACKING_PATH = "/wp-json/wc-shipment-tracking/v3/orders/{id}/shipment-trackings"
# tracking_sync: an order in one of these statuses was cancelled (a pushed one not by ordersync: reported)
CANCELLED_STATUSES = ("cancelled", "refunded", "failed", "trash")
NOTE_MAX = 300  # characters of the vendor's note quoted in a vendor_cancelled alert
STATUS_NOTE = re.compile(r"^Order status changed from .+ to .+\.$")  # WooCommerce's own, whoever it names


def _unexpected(payload: Any) -> str:
    """What a 2xx answer that is not the expected shape held (WooCommerce errors are ``{code, message}``)."""
    if isinstance(payload, dict) and "message" in payload:
        return f"the store answered with an error: {payload.get('code', 'error')}: {payload['message']}"
    text = json.dumps(payload, default=str)
    return f"the store answered with a JSON {type(payload).__name__}: {text[:200]}{'…' if len(text) > 200 else ''}"


def _wc_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rest_v3(
    host: str,
    key: str,
    secret: str,
    label: str,
    *,
    timeout: float = 30.0,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JsonHttp:
    """The store's REST API v3 (``{host}/wp-json/wc/v3``) with Basic auth (consumer key and secret), under one
    retry policy: what the vendor store and its webhook subscriptions both speak."""
    return JsonHttp(
        f"{host.rstrip('/')}/wp-json/wc/v3",
        label,
        auth=(key, secret),
        timeout=timeout,
        policy=policy,
        sleep=sleep,
    )


def _described(product: dict[str, Any]) -> str:
    """A product as a hold names it: ``M6 bolts x100 (product 12)``, ``Drill - 18V (variation 14 of product 13)``."""
    name = product.get("name") or "(unnamed product)"
    if product.get("type") == "variation":
        return f"{name} (variation {product['id']} of product {product['parent_id']})"
    return f"{name} (product {product['id']})"


class WooVendor(WooRefunds, OverHttp):
    """A vendor's WooCommerce store. Locations do not exist there: ``location_id`` is ignored."""

    platform = "woocommerce"

    def __init__(
        self,
        host: str,
        key: str,
        secret: str,
        label: str,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.label = label
        self.http = rest_v3(host, key, secret, label, timeout=timeout, policy=policy, sleep=sleep)

    def _list(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        _, _, payload = self.http.request("GET", path, params=params)
        if not isinstance(payload, list):
            raise TransientError(f"{self.label}: GET {path}: expected a JSON list; {_unexpected(payload)}")
        return payload

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]:
        """The published products and variations whose SKU is exactly one of ``skus``. ``GET /products?sku=``
        answers every status but trash unless ``status`` is given: ``status=publish`` leaves out drafts, pending,
        private and future products and disabled (private) variations; a variation also needs its parent
        published, read in one more request. A SKU that two or more live products carry (a store that lifted
        WooCommerce's unique-SKU check) comes back ``ambiguous``, naming each of them."""
        live: dict[str, dict[int, dict[str, Any]]] = {}  # sku -> product id -> product, in the store's order
        unique = list(dict.fromkeys(s for s in skus if s))
        for start in range(0, len(unique), SKU_BATCH):
            batch = unique[start : start + SKU_BATCH]
            wanted = set(batch)
            page = 1
            while True:
                products = self._list(
                    "/products",
                    {"sku": ",".join(batch), "status": LIVE_STATUS, "per_page": PAGE_SIZE, "page": page},
                )
                for product in products:
                    sku = product.get("sku")
                    if sku in wanted and product.get("status") == LIVE_STATUS:
                        live.setdefault(sku, {})[int(product["id"])] = product
                if len(products) < PAGE_SIZE:
                    break
                page += 1
        parents = self._live_parents(
            {int(p["parent_id"]) for ps in live.values() for p in ps.values() if p.get("type") == "variation"}
        )
        found: dict[str, Mapping] = {}
        for sku, candidates in live.items():
            kept = [
                p
                for p in candidates.values()
                if p.get("type") != "variation" or int(p["parent_id"]) in parents
            ]
            if not kept:
                continue
            first = kept[0]
            if first.get("type") == "variation":
                mapping = Mapping(sku=sku, product_id=str(first["parent_id"]), variant_id=str(first["id"]))
            else:
                mapping = Mapping(sku=sku, product_id=str(first["id"]))
            if len(kept) > 1:
                mapping = mapping.model_copy(update={"ambiguous": tuple(_described(p) for p in kept)})
            found[sku] = mapping
        return found

    def _live_parents(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        """Which of these parent products are published (a variation of a draft or trashed product is not live)."""
        wanted = sorted(ids)
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), PAGE_SIZE):
            chunk = wanted[start : start + PAGE_SIZE]
            for product in self._list(
                "/products",
                {"include": ",".join(map(str, chunk)), "status": LIVE_STATUS, "per_page": PAGE_SIZE},
            ):
                if product.get("status") == LIVE_STATUS:
                    out[int(product["id"])] = product
        return out

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None:
        """Orders created since the first attempt (minus a margin), matched by the marker in ``meta_data``."""
        start = (since or datetime.now(UTC) - timedelta(days=2)) - timedelta(minutes=10)
        for page in range(1, LOOKUP_MAX_PAGES + 1):
            orders = self._list(
                "/orders",
                {
                    "after": _wc_time(start),
                    "per_page": PAGE_SIZE,
                    "page": page,
                    "orderby": "date",
                    "order": "asc",
                    "status": "any",
                },
            )
            for order in orders:
                for meta in order.get("meta_data") or ():
                    if meta.get("key") == MARKER_KEY and meta.get("value") == marker:
                        return VendorOrderRef(
                            id=str(order["id"]), name=f"#{order.get('number') or order['id']}"
                        )
            if len(orders) < PAGE_SIZE:
                return None
        raise StoreError(f"{self.label}: too many orders since {_wc_time(start)} to look up {marker}")

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef:
        _, _, order = self.http.request(
            "POST", "/orders", json_body=build_order_payload(draft), idempotent=False
        )
        if not isinstance(order, dict) or "id" not in order:
            raise TransientError(
                f"{self.label}: POST /orders answered without an order id; {_unexpected(order)}",
                maybe_committed=True,
            )
        return VendorOrderRef(id=str(order["id"]), name=f"#{order.get('number') or order['id']}")

    def update_order(self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str) -> None:
        self.http.request("PUT", f"/orders/{vendor_order_id}", json_body=update_payload(fields))

    def order_state(self, vendor_order_id: str) -> VendorOrderState:
        _, _, order = self.http.request("GET", f"/orders/{vendor_order_id}")
        status = str((order or {}).get("status") or "unknown")
        return VendorOrderState(
            cancelled=status == "cancelled", fulfilled=status == "completed", status=status
        )

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None:
        """A private order note first (``Cancelled at the marketplace: …``), then status ``cancelled``: the note
        tells tracking_sync this cancellation is ordersync's even before the ledger has recorded it."""
        self.http.request(
            "POST", f"/orders/{vendor_order_id}/notes", json_body={"note": note, "customer_note": False}
        )
        self.http.request("PUT", f"/orders/{vendor_order_id}", json_body={"status": "cancelled"})

    # -- tracking_sync --------------------------------------------------------------------------------------------
    def changed_orders(
        self, since: datetime | None = None, order_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Raw orders modified after ``since`` (one second of overlap: WooCommerce compares strictly), or exactly
        ``order_ids``."""
        out: list[dict[str, Any]] = []
        if order_ids is not None:
            ids = [str(i) for i in order_ids]
            for start in range(0, len(ids), PAGE_SIZE):
                out += self._list(
                    "/orders",
                    {
                        "include": ",".join(ids[start : start + PAGE_SIZE]),
                        "per_page": PAGE_SIZE,
                        "status": "any",
                    },
                )
            return out
        params: dict[str, Any] = {
            "per_page": PAGE_SIZE,
            "status": "any",
            "orderby": "modified",
            "order": "asc",
        }
        if since is not None:
            params["modified_after"] = _wc_time(since - timedelta(seconds=1))
        page = 1
        while True:
            orders = self._list("/orders", {**params, "page": page})
            out += orders
            if len(orders) < PAGE_SIZE:
                return out
            page += 1

    def shipped_orders(
        self, since: datetime | None = None, order_ids: list[str] | None = None, only: set[str] | None = None
    ) -> Iterator[ShippedOrder]:
        """Changed (or named) orders; tracking items are read only for the orders in ``only`` (the ones ordersync
        pushed), the others come back without shipments (their modification time still counts)."""
        for order in self.changed_orders(since, order_ids):
            if only is not None and str(order["id"]) not in only:
                modified = order.get("date_modified_gmt") or order.get("date_modified")
                yield ShippedOrder(
                    id=str(order["id"]),
                    name=f"#{order.get('number') or order['id']}",
                    updated_at=datetime.fromisoformat(modified).replace(tzinfo=UTC) if modified else None,
                    status=str(order.get("status") or ""),
                )
                continue
            yield self.shipped_order(order)

    def shipped_order(self, order: dict[str, Any]) -> ShippedOrder:
        """One order with its Shipment Tracking items (each a shipment of the order's still-unshipped lines)."""
        name = f"#{order.get('number') or order['id']}"
        modified = order.get("date_modified_gmt") or order.get("date_modified")
        updated = datetime.fromisoformat(modified).replace(tzinfo=UTC) if modified else None
        lines = tuple(
            (str(li.get("sku") or ""), int(li.get("quantity") or 0)) for li in order.get("line_items") or ()
        )
        status = str(order.get("status") or "")
        cancelled = status in CANCELLED_STATUSES
        base: dict[str, Any] = dict(
            id=str(order["id"]),
            name=name,
            updated_at=updated,
            status=status,
            lines=lines,
            cancelled=cancelled,
            whole_order_tracking=True,
            # WooCommerce keeps no cancellation date: the order's last change (the status change, mostly)
            cancelled_at=updated if cancelled else None,
            cancel_reason=f"status {status}" if cancelled else None,
            refunded=status == "refunded",
        )
        try:
            items = self.tracking_items(order)
        except StoreError as exc:
            return ShippedOrder(**base, error=str(exc))
        shipments = tuple(
            Shipment(
                key=str(i["tracking_id"]),
                lines=None,
                tracking=Tracking(
                    company=shopify_company(i.get("tracking_provider")),
                    numbers=(str(i["tracking_number"]),),
                    urls=(str(i.get("tracking_link") or ""),) if i.get("tracking_link") else (),
                ),
            )
            for i in items
            if i.get("tracking_number") and i.get("tracking_id")
        )
        return ShippedOrder(**base, shipments=shipments)

    def cancel_note(self, order_id: str) -> str | None:
        """The latest note a person (or ordersync) left on the order (``GET /orders/{id}/notes``, newest first: a
        note to the customer, or one whose author is not the store itself, and not a "Order status changed"
        note, which WooCommerce signs with the person who changed the status): the vendor's word on a
        cancellation. None when there is none or the notes cannot be read (a store without the route)."""
        try:
            notes = self._list(f"/orders/{order_id}/notes", {})
        except StoreError:
            return None
        for note in notes:
            text = " ".join(re.sub(r"<[^>]+>", " ", str(note.get("note") or "")).split())
            by_store = str(note.get("author") or "").lower() in ("", "system", "woocommerce")
            if not text or STATUS_NOTE.match(text) or (by_store and not note.get("customer_note")):
                continue
            return text[:NOTE_MAX] + ("…" if len(text) > NOTE_MAX else "")
        return None

    def tracking_items(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The extension's REST route; when the route is missing, the ``_wc_shipment_tracking_items`` meta."""
        has_meta = any(m.get("key") == TRACKING_META_KEY for m in order.get("meta_data") or ())
        if not has_meta:
            return []  # the extension keeps every item in this meta: none there, none at all
        root = self.http.base_url[: -len("/wp-json/wc/v3")]
        path = TRACKING_PATH.format(id=order["id"])
        try:
            _, _, items = self._tracking_http(root).request("GET", path)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            return _items_from_meta(order)
        if not isinstance(items, list):
            raise TransientError(f"{self.label}: GET {path}: expected a JSON list; {_unexpected(items)}")
        return items

    def _tracking_http(self, root: str) -> JsonHttp:
        if getattr(self, "_st_http", None) is None:
            self._st_http = JsonHttp(
                root,
                self.label,
                auth=self.http.auth,
                timeout=self.http.timeout,
                policy=self.http.policy,
                sleep=self.http.sleep,
            )
            self._st_http.session.close()
            self._st_http.session = self.http.session  # one session (auth, pool); calls counted below
        return self._st_http

    @property
    def calls(self) -> int:
        return self.http.calls + (self._st_http.calls if getattr(self, "_st_http", None) else 0)


def _items_from_meta(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Tracking items from the order meta (no provider URL table here: only custom links are known)."""
    meta = next((m for m in order.get("meta_data") or () if m.get("key") == TRACKING_META_KEY), None)
    out = []
    for item in (meta or {}).get("value") or []:
        number = str(item.get("tracking_number") or "")
        provider = item.get("custom_tracking_provider") or item.get("tracking_provider") or ""
        link = (item.get("custom_tracking_link") or "").replace("%1$s", number)
        out.append(
            {
                "tracking_id": item.get("tracking_id"),
                "tracking_number": number,
                "tracking_provider": provider,
                "tracking_link": link,
            }
        )
    return out
