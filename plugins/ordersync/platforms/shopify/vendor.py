"""A vendor's own Shopify store: SKUs, orders created once (found again by their marker), edits, cancels,
locations and the vendor's fulfilments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ordersync.models import Mapping, VendorOrderDraft, VendorOrderRef, VendorOrderState
from ordersync.platforms.http import OverHttp, PermanentError
from ordersync.platforms.shopify.client import ShopifyGraphQL
from ordersync.platforms.shopify.documents import (
    ID_BATCH,
    SHIPPED_FULFILLMENTS,
    SHIPPED_LINES,
    SHIPPED_ONE_FULFILLMENTS,
    SHIPPED_ONE_LINES,
    SHIPPED_ORDERS_PAGE_SIZE,
    SHIPPED_TRACKING,
    VARIANT_SKU_BATCH,
    VARIANTS_PAGE_SIZE,
    search_value,
    shopify_time,
)
from ordersync.platforms.shopify.parse import shipped_order, user_errors
from ordersync.platforms.shopify.payloads import CREATE_OPTIONS, build_order_input, update_input
from ordersync.platforms.shopify.refunds import ShopifyRefunds
from ordersync.tracking.model import ShippedOrder

LIVE_PRODUCT_STATUS = "ACTIVE"  # ProductStatus: ARCHIVED, DRAFT and UNLISTED products are not resolved


def _described(node: dict[str, Any]) -> str:
    """A variant as a hold names it: ``Claw Hammer (variant gid://shopify/ProductVariant/1)``."""
    title = (node.get("product") or {}).get("title") or "(untitled product)"
    variant = node.get("title")
    if variant and variant != "Default Title":
        title = f"{title} - {variant}"
    return f"{title} (variant {node['id']})"


class ShopifyVendor(ShopifyRefunds, OverHttp):
    """A vendor's own Shopify store."""

    platform = "shopify"

    def __init__(self, gql: ShopifyGraphQL) -> None:
        self.gql = gql
        self.http = gql.http

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]:
        """The variants of ACTIVE products whose SKU is exactly one of ``skus`` (archived and draft products are
        ignored). A SKU that two or more live variants share comes back ``ambiguous``, naming each of them."""
        live: dict[str, dict[str, dict[str, Any]]] = {}  # sku -> variant id -> node, in the store's order
        unique = list(dict.fromkeys(s for s in skus if s))
        for start in range(0, len(unique), VARIANT_SKU_BATCH):
            batch = unique[start : start + VARIANT_SKU_BATCH]
            skus_query = " OR ".join(f"sku:{search_value(s)}" for s in batch)
            query = f"product_status:{LIVE_PRODUCT_STATUS} AND ({skus_query})"
            wanted = set(batch)
            after: str | None = None
            while True:
                data = self.gql.execute(
                    "VendorVariantsBySku", {"first": VARIANTS_PAGE_SIZE, "query": query, "after": after}
                )
                connection = data["productVariants"]
                for node in connection["nodes"]:
                    sku = node.get("sku")
                    product = node.get("product") or {}
                    # search is fuzzy: exact matches only; the status filter is checked again here
                    if sku in wanted and product.get("status") == LIVE_PRODUCT_STATUS:
                        live.setdefault(sku, {})[node["id"]] = node
                page = connection.get("pageInfo") or {}
                if not page.get("hasNextPage"):
                    break
                after = page["endCursor"]
        found: dict[str, Mapping] = {}
        for sku, variants in live.items():
            first, *others = variants.values()
            found[sku] = Mapping(
                sku=sku,
                product_id=first["product"]["id"],
                variant_id=first["id"],
                ambiguous=tuple(_described(v) for v in variants.values()) if others else (),
            )
        return found

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None:
        data = self.gql.execute("VendorOrderBySource", {"query": f"source_identifier:{search_value(marker)}"})
        for node in data["orders"]["nodes"]:
            if node.get("sourceIdentifier") == marker:
                return VendorOrderRef(id=node["id"], name=node["name"])
        return None

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef:
        data = self.gql.execute(
            "VendorOrderCreate", {"order": build_order_input(draft), "options": CREATE_OPTIONS}, mutation=True
        )
        result = data["orderCreate"]
        errors = result.get("userErrors") or []
        if errors:
            raise PermanentError(
                f"{self.gql.label}: orderCreate refused: {user_errors(errors, 'order')}",
                code=",".join(str(e.get("code")) for e in errors),
            )
        order = result["order"]
        return VendorOrderRef(id=order["id"], name=order["name"])

    def update_order(self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str) -> None:
        custom = [list(p) for p in fields.get("custom_attributes", [])]
        if "custom_attributes" in fields:  # keep the link back: customAttributes are replaced whole
            fields = {
                **fields,
                "custom_attributes": custom + [["ordersync_merchant_order", merchant_order_name]],
            }
        result = self.gql.execute(
            "VendorOrderUpdate", {"input": update_input(vendor_order_id, fields)}, mutation=True
        )["orderUpdate"]
        if result.get("userErrors"):
            raise PermanentError(
                f"{self.gql.label}: orderUpdate refused: {user_errors(result['userErrors'], 'order')}"
            )

    def order_state(self, vendor_order_id: str) -> VendorOrderState:
        order = self.gql.execute("VendorOrderStatus", {"id": vendor_order_id})["order"]
        if order is None:
            raise PermanentError(f"{self.gql.label}: vendor order {vendor_order_id} no longer exists")
        status = order.get("displayFulfillmentStatus") or "UNFULFILLED"
        return VendorOrderState(
            cancelled=order.get("cancelledAt") is not None,
            fulfilled=status in ("FULFILLED", "PARTIALLY_FULFILLED"),
            status=status,
        )

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None:
        result = self.gql.execute(
            "VendorOrderCancel",
            {"orderId": vendor_order_id, "reason": reason, "staffNote": note[:255]},
            mutation=True,
        )["orderCancel"]
        if result.get("orderCancelUserErrors"):
            described = user_errors(result["orderCancelUserErrors"], None)
            raise PermanentError(
                f"{self.gql.label}: orderCancel refused: {described}",
                code=",".join(str(e.get("code")) for e in result["orderCancelUserErrors"]),
            )

    def assign_location(self, order_id: str, location_id: str) -> str:
        """Move the new order's open fulfilment orders to ``location_id``; returns what was done."""
        data = self.gql.execute("VendorFulfillmentOrders", {"id": order_id})
        moved = 0
        for fo in data["order"]["fulfillmentOrders"]["nodes"]:
            current = ((fo.get("assignedLocation") or {}).get("location") or {}).get("id")
            if current == location_id:
                continue
            result = self.gql.execute(
                "VendorFulfillmentOrderMove", {"id": fo["id"], "newLocationId": location_id}, mutation=True
            )["fulfillmentOrderMove"]
            if result.get("userErrors"):
                raise PermanentError(
                    f"{self.gql.label}: cannot move fulfilment order to {location_id}: "
                    f"{user_errors(result['userErrors'], None)}"
                )
            moved += 1
        return f"{moved} fulfilment order(s) moved to {location_id}" if moved else f"already at {location_id}"

    # -- tracking_sync: the vendor side --------------------------------------------------------------------------
    def shipped_orders(
        self, since: datetime | None = None, order_ids: list[str] | None = None, only: set[str] | None = None
    ) -> Iterator[ShippedOrder]:
        """Orders updated at or after ``since`` (or exactly ``order_ids``) with their fulfilments and tracking
        (``only``: a hint of the orders that matter; every order is read in full here anyway)."""
        if order_ids is not None:
            ids = [i.rsplit("/", 1)[-1] for i in order_ids]
            queries = [
                " OR ".join(f"id:{i}" for i in ids[start : start + ID_BATCH])
                for start in range(0, len(ids), ID_BATCH)
            ]
        else:
            queries = [f"updated_at:>='{shopify_time(since)}'" if since else ""]
        for query in queries:
            after: str | None = None
            while True:
                data = self.gql.execute(
                    "VendorOrderFulfillments",
                    {
                        "first": SHIPPED_ORDERS_PAGE_SIZE,
                        "after": after,
                        "query": query,
                        "fulfillments": SHIPPED_FULFILLMENTS,
                        "tracking": SHIPPED_TRACKING,
                        "lineItems": SHIPPED_LINES,
                    },
                )
                connection = data["orders"]
                for node in connection["nodes"]:
                    yield self._shipped(node)
                if not connection["pageInfo"]["hasNextPage"]:
                    break
                after = connection["pageInfo"]["endCursor"]

    def _shipped(self, node: dict[str, Any]) -> ShippedOrder:
        try:
            order, truncated = shipped_order(node)
            if truncated:
                data = self.gql.execute(
                    "VendorOrderFulfillmentsById",
                    {
                        "id": node["id"],
                        "fulfillments": SHIPPED_ONE_FULFILLMENTS,
                        "tracking": SHIPPED_TRACKING,
                        "lineItems": SHIPPED_ONE_LINES,
                    },
                )
                order, truncated = shipped_order(data["order"])
                if truncated and len(data["order"].get("fulfillments") or []) >= SHIPPED_ONE_FULFILLMENTS:
                    raise PermanentError(f"more than {SHIPPED_ONE_FULFILLMENTS} fulfilments")
                if truncated:
                    raise PermanentError(f"a fulfilment with more than {SHIPPED_ONE_LINES} lines")
            return order
        except Exception as exc:  # one unreadable order never stops the batch
            return ShippedOrder(
                id=node.get("id") or "?",
                name=node.get("name") or "?",
                updated_at=None,
                status="",
                error=f"{self.gql.label}: cannot read the fulfilments of vendor order "
                f"{node.get('name') or node.get('id')}: {exc}",
            )
