"""Shopify through the GraphQL Admin API (2026-10): the merchant source and Shopify vendor stores.

Cost-aware: every response's ``extensions.cost.throttleStatus`` is read; a
query is held back while the bucket cannot pay for it, and ``THROTTLED`` is
waited out (for up to ``max_throttle_waits`` x ``cap_seconds``, 10 minutes by
default). Page sizes keep each query's requested cost under Shopify's 1,000-point
single-query limit (a test computes it).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from ordersync.models import Address, Mapping, MerchantOrder, VendorOrderDraft, VendorOrderRef, VendorOrderState
from ordersync.shipments import (FulfillmentOrder, FulfillmentOrderLine, MerchantFulfillment,
                                 MerchantFulfillmentState, ShippedOrder, Shipment, Tracking, shopify_company)
from ordersync.platforms.transport import JsonHttp, OverHttp, PermanentError, RetryPolicy, TransientError

log = logging.getLogger(__name__)

API_VERSION = "2026-10"
GRAPHQL_DIR = Path(__file__).parent / "graphql"

# MerchantOrders costs about 2 + first x (10 + 2 + 3 x lineItems); 10 x 25 stays under 1,000.
ORDERS_PAGE_SIZE = 10
LINE_ITEMS_PAGE_SIZE = 25
LINE_ITEMS_FOLLOW_UP_PAGE = 100
VARIANT_SKU_BATCH = 25          # SKUs per productVariants search
VARIANTS_PAGE_SIZE = 50
ID_BATCH = ORDERS_PAGE_SIZE     # order ids per manual-run search
# tracking_sync: VendorOrderFulfillments costs about 2 + first x (1 + fulfillments x (1 + tracking + 3 +
# 2 x lineItems)); 5 x 5 x (5, 10) is about 730. An order whose fulfilments do not fit is re-read alone with
# VendorOrderFulfillmentsById (about 890); MerchantFulfillmentState about 640.
SHIPPED_ORDERS_PAGE_SIZE = 5
SHIPPED_FULFILLMENTS = 5
SHIPPED_TRACKING = 5
SHIPPED_LINES = 10
SHIPPED_ONE_FULFILLMENTS = 10
SHIPPED_ONE_LINES = 40
MERCHANT_FULFILLMENT_ORDERS = 5
MERCHANT_FO_LINES = 50
MERCHANT_FULFILLMENTS = 10
MERCHANT_TRACKING = 10
CREATE_FINANCIAL_STATUSES = {"AUTHORIZED", "EXPIRED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED",
                             "PENDING", "REFUNDED", "VOIDED"}


@lru_cache(maxsize=None)
def document(name: str) -> str:
    """The text of ``graphql/<name>.graphql``: every document ordersync sends lives there."""
    return (GRAPHQL_DIR / f"{name}.graphql").read_text()


def search_value(value: str) -> str:
    """Quote a value for Shopify's search syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shopify_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyGraphQL(OverHttp):
    """One shop's GraphQL endpoint, with cost-based throttling.

    Safe to share between threads (a vendor's orders are pushed concurrently): before a request is sent its
    expected cost (the requested cost of the last call of the same document) is reserved against the bucket
    as last reported by ``throttleStatus``, refilled at ``restoreRate`` since then, minus what requests still
    in flight have reserved. A request that the bucket cannot pay for waits until it can, so concurrent
    requests pace themselves instead of drawing ``THROTTLED``.
    """

    def __init__(self, host: str, token: str, label: str, *, api_version: str = API_VERSION,
                 timeout: float = 30.0, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.label = label
        self.http = JsonHttp(f"{host.rstrip('/')}/admin/api/{api_version}", label, timeout=timeout, policy=policy,
                             sleep=sleep, headers={"X-Shopify-Access-Token": token,
                                                   "Content-Type": "application/json"})
        self.sleep = sleep
        self.available: float | None = None        # points in the bucket at ``_known_at`` (last throttleStatus)
        self.maximum: float | None = None
        self.restore_rate: float | None = None
        self.last_cost: dict[str, float] = {}
        self._lock = threading.Lock()
        self._known_at = 0.0
        self._in_flight = 0.0                        # points reserved by requests sent and not yet answered
        self._skew = 0.0                             # time an injected ``sleep`` did not really wait (tests)

    def _clock(self) -> float:
        return time.monotonic() + self._skew

    def _remember_cost(self, payload: dict[str, Any], name: str) -> float | None:
        cost = (payload.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        with self._lock:
            if "currentlyAvailable" in status:
                self.available = float(status["currentlyAvailable"])
                self.maximum = float(status.get("maximumAvailable") or 0) or None
                self.restore_rate = float(status.get("restoreRate") or 50.0)
                self._known_at = self._clock()
            requested = cost.get("requestedQueryCost")
            if requested is not None:
                self.last_cost[name] = float(requested)
        return float(requested) if requested is not None else None

    def _estimate(self) -> float:
        """Points the bucket holds now, by our books (caller holds the lock)."""
        assert self.available is not None and self.restore_rate
        refilled = self.available + max(0.0, self._clock() - self._known_at) * self.restore_rate
        if self.maximum:
            refilled = min(self.maximum, refilled)
        return refilled - self._in_flight

    def _reserve(self, name: str) -> float:
        """Wait until the bucket can pay for ``name`` (by the last known cost), then reserve that; returns
        the points reserved (0 while the cost or the bucket is not known yet)."""
        while True:
            with self._lock:
                expected = self.last_cost.get(name)
                if expected is None or self.available is None or not self.restore_rate:
                    return 0.0
                estimate = self._estimate()
                if expected <= estimate or expected > (self.maximum or float("inf")):
                    self._in_flight += expected
                    return expected
                wait = (expected - estimate) / self.restore_rate
            log.info("%s: %s needs %.0f points, %.0f available; waiting %.2fs for the bucket",
                     self.label, name, expected, estimate, wait)
            started = time.monotonic()
            self.sleep(wait)
            slept = time.monotonic() - started
            if slept < wait:
                with self._lock:
                    self._skew += wait - slept

    def _release(self, reserved: float) -> None:
        if reserved:
            with self._lock:
                self._in_flight = max(0.0, self._in_flight - reserved)

    def execute(self, name: str, variables: dict[str, Any], *, mutation: bool = False) -> dict[str, Any]:
        """Run ``graphql/<name>.graphql``; returns ``data`` or raises a StoreError."""
        body = {"query": document(name), "variables": variables, "operationName": name}
        waits = 0
        waited = 0.0
        while True:
            reserved = self._reserve(name)
            try:
                _, _, payload = self.http.request("POST", "/graphql.json", json_body=body, idempotent=not mutation,
                                                  operation=name)
                if not isinstance(payload, dict):
                    raise TransientError(f"{self.label}: {name}: the store answered with no JSON object",
                                         maybe_committed=mutation)
                requested = self._remember_cost(payload, name)
            finally:
                self._release(reserved)
            errors = payload.get("errors")
            if not errors:
                if "data" not in payload or payload["data"] is None:
                    raise TransientError(f"{self.label}: {name}: the answer holds neither data nor errors",
                                         maybe_committed=mutation)
                return payload["data"]
            if isinstance(errors, str):
                raise PermanentError(f"{self.label}: {name}: {errors}")
            codes = {((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            if "THROTTLED" in codes:
                # Waited out, not counted against the attempts: other clients of the same shop (the other
                # tasks of a run share the merchant's bucket) can keep a dear query waiting for a while.
                # Give up only after as long as max_throttle_waits full back-offs would take (10 minutes
                # by default). The jitter keeps clients that were throttled together from retrying together.
                self.http.count_throttled()
                waits += 1
                policy = self.http.policy
                if waited >= policy.max_throttle_waits * policy.cap_seconds:
                    raise TransientError(f"{self.label}: {name}: still THROTTLED after {waits - 1} waits "
                                         f"({waited:.0f}s)")
                with self._lock:
                    rate = self.restore_rate or 50.0
                    have = self._estimate() if self.available is not None and self.restore_rate else 0.0
                needed = (requested or self.last_cost.get(name) or 50.0) - have
                wait = min(max(needed / rate, 0.05), policy.cap_seconds) * random.uniform(1.0, 1.5)
                log.info("%s: %s THROTTLED; waiting %.2fs for the cost bucket to refill", self.label, name, wait)
                self.sleep(wait)
                waited += wait
                continue
            if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}:
                raise TransientError(f"{self.label}: {name}: {messages}", maybe_committed=mutation)
            raise PermanentError(f"{self.label}: {name}: {messages}", code=",".join(sorted(c for c in codes if c)))


class ShopifyMerchant(OverHttp):
    """Reads the merchant's orders."""

    def __init__(self, gql: ShopifyGraphQL) -> None:
        self.gql = gql
        self.http = gql.http

    def _orders(self, query: str) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        after: str | None = None
        while True:
            data = self.gql.execute("MerchantOrders", {"first": ORDERS_PAGE_SIZE, "after": after, "query": query,
                                                        "lineItems": LINE_ITEMS_PAGE_SIZE})
            connection = data["orders"]
            for node in connection["nodes"]:
                try:
                    lines = self._all_lines(node)
                    yield node, MerchantOrder.from_graphql(node, lines), None
                except Exception as exc:  # one malformed order never stops the batch
                    yield node, None, f"cannot read merchant order {node.get('name') or node.get('id')}: {exc}"
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    def _all_lines(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        connection = node["lineItems"]
        lines = list(connection["nodes"])
        page = connection["pageInfo"]
        while page["hasNextPage"]:
            data = self.gql.execute("MerchantOrderLineItems", {"id": node["id"], "first": LINE_ITEMS_FOLLOW_UP_PAGE,
                                                                "after": page["endCursor"]})
            more = data["order"]["lineItems"]
            lines.extend(more["nodes"])
            page = more["pageInfo"]
        return lines

    def changed_since(self, since: datetime | None) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        """Orders updated at or after ``since`` (all orders when None), oldest change first."""
        query = f"updated_at:>='{shopify_time(since)}'" if since else ""
        return self._orders(query)

    def by_refs(self, refs: list[str]) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        """Orders named by GID, numeric id or name (``#1001``)."""
        terms = []
        for ref in refs:
            ref = ref.strip()
            if ref.startswith("gid://"):
                terms.append(f"id:{ref.rsplit('/', 1)[-1]}")
            elif ref.isdigit():
                terms.append(f"id:{ref}")
            elif ref:
                terms.append(f"name:{search_value(ref if ref.startswith('#') else '#' + ref)}")
        for start in range(0, len(terms), ID_BATCH):
            yield from self._orders(" OR ".join(terms[start:start + ID_BATCH]))

    # -- tracking_sync: the merchant side of a shipment -----------------------------------------------------------
    def fulfillment_state(self, order_id: str) -> MerchantFulfillmentState:
        """Open fulfilment orders (remaining quantity per line) and existing fulfilments of one merchant order."""
        data = self.gql.execute("MerchantFulfillmentState", {
            "id": order_id, "fulfillmentOrders": MERCHANT_FULFILLMENT_ORDERS, "lineItems": MERCHANT_FO_LINES,
            "fulfillments": MERCHANT_FULFILLMENTS, "tracking": MERCHANT_TRACKING})
        order = data.get("order")
        if order is None:
            raise PermanentError(f"{self.gql.label}: merchant order {order_id} no longer exists")
        connection = order["fulfillmentOrders"]
        truncated = connection["pageInfo"]["hasNextPage"]
        fos = []
        for node in connection["nodes"]:
            truncated = truncated or node["lineItems"]["pageInfo"]["hasNextPage"]
            fos.append(FulfillmentOrder(
                id=node["id"], status=node["status"],
                location_id=((node.get("assignedLocation") or {}).get("location") or {}).get("id"),
                lines=[FulfillmentOrderLine(id=l["id"], remaining=int(l["remainingQuantity"]),
                                            sku=(l.get("lineItem") or {}).get("sku"),
                                            vendor=(l.get("lineItem") or {}).get("vendor"),
                                            line_item_id=(l.get("lineItem") or {}).get("id"))
                       for l in node["lineItems"]["nodes"]]))
        if truncated:
            raise PermanentError(f"{self.gql.label}: merchant order {order['name']} has more than "
                                 f"{MERCHANT_FULFILLMENT_ORDERS} fulfilment orders or {MERCHANT_FO_LINES} lines in "
                                 "one: write its tracking by hand")
        fulfillments = [MerchantFulfillment(id=f["id"], status=f.get("status") or "", created_at=f.get("createdAt"),
                                            tracking=_tracking_of(f.get("trackingInfo") or [], map_company=False))
                        for f in order.get("fulfillments") or []]
        return MerchantFulfillmentState(order_id=order["id"], name=order["name"],
                                        status=order.get("displayFulfillmentStatus") or "",
                                        fulfillment_orders=fos, fulfillments=fulfillments)

    def create_fulfillment(self, groups: list[dict[str, Any]], tracking: Tracking, notify: bool) -> str:
        """fulfillmentCreate; returns the new fulfilment's GID."""
        fulfillment: dict[str, Any] = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify}
        info = tracking.as_input()
        if info:
            fulfillment["trackingInfo"] = info
        result = self.gql.execute("MerchantFulfillmentCreate", {"fulfillment": fulfillment},
                                  mutation=True)["fulfillmentCreate"]
        if result.get("userErrors"):
            raise PermanentError(f"{self.gql.label}: fulfillmentCreate refused: {_user_errors(result['userErrors'])}")
        if not result.get("fulfillment"):
            raise TransientError(f"{self.gql.label}: fulfillmentCreate answered without a fulfillment",
                                 maybe_committed=True)
        return result["fulfillment"]["id"]

    def update_tracking(self, fulfillment_id: str, tracking: Tracking, notify: bool) -> None:
        """fulfillmentTrackingInfoUpdate: the fulfilment's tracking becomes ``tracking`` (idempotent)."""
        result = self.gql.execute("MerchantFulfillmentTrackingUpdate", {
            "fulfillmentId": fulfillment_id, "trackingInfoInput": tracking.as_input(), "notifyCustomer": notify},
            mutation=True)["fulfillmentTrackingInfoUpdate"]
        if result.get("userErrors"):
            raise PermanentError(f"{self.gql.label}: fulfillmentTrackingInfoUpdate refused on {fulfillment_id}: "
                                 f"{_user_errors(result['userErrors'])}")


def _user_errors(errors: list[dict[str, Any]], subject: str | None = "input") -> str:
    """Shopify ``userErrors`` as one line: ``field: message``, the field defaulting to ``subject``
    (``subject=None``: the messages alone)."""
    if subject is None:
        return "; ".join(e["message"] for e in errors)
    return "; ".join(f"{'.'.join(e.get('field') or []) or subject}: {e['message']}" for e in errors)


def _tracking_of(infos: list[dict[str, Any]], map_company: bool = True) -> Tracking:
    numbers = [i.get("number") for i in infos]
    company = next((i.get("company") for i in infos if i.get("company")), None)
    return Tracking(company=shopify_company(company) if map_company else company,
                    numbers=tuple(n for n in numbers if n),
                    urls=tuple((i.get("url") or "") for i in infos if i.get("number"))
                    if any(i.get("url") for i in infos) else ())


def _shipped_order(node: dict[str, Any]) -> tuple[ShippedOrder, bool]:
    """A vendor Shopify order with its (non-cancelled) fulfilments; and whether a page cut something off."""
    truncated = len(node.get("fulfillments") or []) >= SHIPPED_FULFILLMENTS
    shipments = []
    for f in node.get("fulfillments") or []:
        truncated = truncated or f["fulfillmentLineItems"]["pageInfo"]["hasNextPage"]
        if f.get("status") in ("CANCELLED", "ERROR", "FAILURE"):
            continue
        lines = tuple(((n.get("lineItem") or {}).get("sku") or "", int(n["quantity"]))
                      for n in f["fulfillmentLineItems"]["nodes"])
        shipments.append(Shipment(key=f["id"], tracking=_tracking_of(f.get("trackingInfo") or []), lines=lines,
                                  created_at=_parse_time(f.get("createdAt"))))
    order = ShippedOrder(id=node["id"], name=node["name"], updated_at=_parse_time(node.get("updatedAt")),
                         status=node.get("displayFulfillmentStatus") or "", shipments=tuple(shipments),
                         cancelled=node.get("cancelledAt") is not None)
    return order, truncated


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}


def address_input(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    fields = {"firstName": address.first_name, "lastName": address.last_name, "company": address.company,
              "address1": address.address1, "address2": address.address2, "city": address.city,
              "provinceCode": address.province_code, "zip": address.zip, "countryCode": address.country_code,
              "phone": address.phone}
    return {k: v for k, v in fields.items() if v not in (None, "")}


def build_order_input(draft: VendorOrderDraft) -> dict[str, Any]:
    """``OrderCreateOrderInput`` for one vendor's share (pure; unit-tested)."""
    lines = []
    for line in draft.lines:
        price = _money(line.unit_price, draft.currency)
        if line.mapping and line.mapping.variant_id:
            lines.append({"variantId": line.mapping.variant_id, "quantity": line.quantity, "priceSet": price})
        else:
            custom = {"title": line.title, "quantity": line.quantity, "priceSet": price, "requiresShipping": True}
            if line.variant_title:
                custom["variantTitle"] = line.variant_title
            if line.sku:
                custom["sku"] = line.sku
            lines.append(custom)
    contact = {k: v for k, v in {"firstName": draft.contact.first_name, "lastName": draft.contact.last_name,
                                 "email": draft.contact.email, "phone": draft.contact.phone}.items() if v}
    order: dict[str, Any] = {
        "currency": draft.currency,
        "lineItems": lines,
        "financialStatus": draft.financial_status if draft.financial_status in CREATE_FINANCIAL_STATUSES else "PENDING",
        "sourceIdentifier": draft.marker,
        "sourceName": "ordersync",
        "tags": list(draft.tags),
        "customAttributes": [{"key": k, "value": v} for k, v in draft.custom_attributes]
        + [{"key": "ordersync_merchant_order", "value": draft.merchant_order_name}],
    }
    if draft.accepts_marketing is not None:
        order["buyerAcceptsMarketing"] = draft.accepts_marketing
    optional = {"email": draft.email, "phone": draft.phone, "note": draft.note,
                "billingAddress": address_input(draft.billing_address),
                "shippingAddress": address_input(draft.shipping_address),
                "customer": {"toUpsert": contact} if contact else None}
    order.update({k: v for k, v in optional.items() if v})
    return order


def update_input(vendor_order_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``OrderInput`` from the synced fields (``ordersync.lifecycle.synced_fields``); lists are sent whole."""
    out: dict[str, Any] = {"id": vendor_order_id}
    if "email" in fields:
        out["email"] = fields["email"]
    if "phone" in fields:
        out["phone"] = fields["phone"]
    if "note" in fields:
        out["note"] = fields["note"] or ""
    if "tags" in fields:
        out["tags"] = list(fields["tags"])
    if "custom_attributes" in fields:
        out["customAttributes"] = [{"key": k, "value": v} for k, v in fields["custom_attributes"]]
    if fields.get("shipping_address"):
        out["shippingAddress"] = address_input(Address(**fields["shipping_address"]))
    return out


CREATE_OPTIONS = {"sendReceipt": False, "sendFulfillmentReceipt": False, "inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}


class ShopifyVendor(OverHttp):
    """A vendor's own Shopify store."""

    platform = "shopify"

    def __init__(self, gql: ShopifyGraphQL) -> None:
        self.gql = gql
        self.http = gql.http

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]:
        found: dict[str, Mapping] = {}
        unique = list(dict.fromkeys(s for s in skus if s))
        for start in range(0, len(unique), VARIANT_SKU_BATCH):
            batch = unique[start:start + VARIANT_SKU_BATCH]
            query = " OR ".join(f"sku:{search_value(s)}" for s in batch)
            data = self.gql.execute("VendorVariantsBySku", {"first": VARIANTS_PAGE_SIZE, "query": query})
            wanted = set(batch)
            for node in data["productVariants"]["nodes"]:
                sku = node.get("sku")
                if sku in wanted and sku not in found:   # search is fuzzy: keep exact matches only
                    found[sku] = Mapping(sku=sku, product_id=node["product"]["id"], variant_id=node["id"])
        return found

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None:
        data = self.gql.execute("VendorOrderBySource", {"query": f"source_identifier:{search_value(marker)}"})
        for node in data["orders"]["nodes"]:
            if node.get("sourceIdentifier") == marker:
                return VendorOrderRef(id=node["id"], name=node["name"])
        return None

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef:
        data = self.gql.execute("VendorOrderCreate", {"order": build_order_input(draft), "options": CREATE_OPTIONS},
                                mutation=True)
        result = data["orderCreate"]
        errors = result.get("userErrors") or []
        if errors:
            raise PermanentError(f"{self.gql.label}: orderCreate refused: {_user_errors(errors, 'order')}",
                                 code=",".join(str(e.get("code")) for e in errors))
        order = result["order"]
        return VendorOrderRef(id=order["id"], name=order["name"])

    def update_order(self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str) -> None:
        custom = [list(p) for p in fields.get("custom_attributes", [])]
        if "custom_attributes" in fields:   # keep the link back: customAttributes are replaced whole
            fields = {**fields, "custom_attributes": custom + [["ordersync_merchant_order", merchant_order_name]]}
        result = self.gql.execute("VendorOrderUpdate", {"input": update_input(vendor_order_id, fields)},
                                  mutation=True)["orderUpdate"]
        if result.get("userErrors"):
            raise PermanentError(f"{self.gql.label}: orderUpdate refused: "
                                 f"{_user_errors(result['userErrors'], 'order')}")

    def order_state(self, vendor_order_id: str) -> VendorOrderState:
        order = self.gql.execute("VendorOrderStatus", {"id": vendor_order_id})["order"]
        if order is None:
            raise PermanentError(f"{self.gql.label}: vendor order {vendor_order_id} no longer exists")
        status = order.get("displayFulfillmentStatus") or "UNFULFILLED"
        return VendorOrderState(cancelled=order.get("cancelledAt") is not None,
                                fulfilled=status in ("FULFILLED", "PARTIALLY_FULFILLED"), status=status)

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None:
        result = self.gql.execute("VendorOrderCancel", {"orderId": vendor_order_id, "reason": reason,
                                                        "staffNote": note[:255]}, mutation=True)["orderCancel"]
        if result.get("orderCancelUserErrors"):
            described = _user_errors(result["orderCancelUserErrors"], None)
            raise PermanentError(f"{self.gql.label}: orderCancel refused: {described}",
                                 code=",".join(str(e.get("code")) for e in result["orderCancelUserErrors"]))

    def assign_location(self, order_id: str, location_id: str) -> str:
        """Move the new order's open fulfilment orders to ``location_id``; returns what was done."""
        data = self.gql.execute("VendorFulfillmentOrders", {"id": order_id})
        moved = 0
        for fo in data["order"]["fulfillmentOrders"]["nodes"]:
            current = ((fo.get("assignedLocation") or {}).get("location") or {}).get("id")
            if current == location_id:
                continue
            result = self.gql.execute("VendorFulfillmentOrderMove", {"id": fo["id"], "newLocationId": location_id},
                                      mutation=True)["fulfillmentOrderMove"]
            if result.get("userErrors"):
                raise PermanentError(f"{self.gql.label}: cannot move fulfilment order to {location_id}: "
                                     f"{_user_errors(result['userErrors'], None)}")
            moved += 1
        return f"{moved} fulfilment order(s) moved to {location_id}" if moved else f"already at {location_id}"


    # -- tracking_sync: the vendor side --------------------------------------------------------------------------
    def shipped_orders(self, since: datetime | None = None, order_ids: list[str] | None = None,
                       only: set[str] | None = None) -> Iterator[ShippedOrder]:
        """Orders updated at or after ``since`` (or exactly ``order_ids``) with their fulfilments and tracking
        (``only``: a hint of the orders that matter; every order is read in full here anyway)."""
        if order_ids is not None:
            ids = [i.rsplit("/", 1)[-1] for i in order_ids]
            queries = [" OR ".join(f"id:{i}" for i in ids[start:start + ID_BATCH])
                       for start in range(0, len(ids), ID_BATCH)]
        else:
            queries = [f"updated_at:>='{shopify_time(since)}'" if since else ""]
        for query in queries:
            after: str | None = None
            while True:
                data = self.gql.execute("VendorOrderFulfillments", {
                    "first": SHIPPED_ORDERS_PAGE_SIZE, "after": after, "query": query,
                    "fulfillments": SHIPPED_FULFILLMENTS, "tracking": SHIPPED_TRACKING, "lineItems": SHIPPED_LINES})
                connection = data["orders"]
                for node in connection["nodes"]:
                    yield self._shipped(node)
                if not connection["pageInfo"]["hasNextPage"]:
                    break
                after = connection["pageInfo"]["endCursor"]

    def _shipped(self, node: dict[str, Any]) -> ShippedOrder:
        try:
            order, truncated = _shipped_order(node)
            if truncated:
                data = self.gql.execute("VendorOrderFulfillmentsById", {
                    "id": node["id"], "fulfillments": SHIPPED_ONE_FULFILLMENTS, "tracking": SHIPPED_TRACKING,
                    "lineItems": SHIPPED_ONE_LINES})
                order, truncated = _shipped_order(data["order"])
                if truncated and len(data["order"].get("fulfillments") or []) >= SHIPPED_ONE_FULFILLMENTS:
                    raise PermanentError(f"more than {SHIPPED_ONE_FULFILLMENTS} fulfilments")
                if truncated:
                    raise PermanentError(f"a fulfilment with more than {SHIPPED_ONE_LINES} lines")
            return order
        except Exception as exc:   # one unreadable order never stops the batch
            return ShippedOrder(id=node.get("id") or "?", name=node.get("name") or "?", updated_at=None, status="",
                                error=f"{self.gql.label}: cannot read the fulfilments of vendor order "
                                      f"{node.get('name') or node.get('id')}: {exc}")
