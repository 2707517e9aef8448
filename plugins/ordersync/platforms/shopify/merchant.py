"""The merchant's Shopify store: orders in, fulfilments and tracking back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ordersync.models import MerchantOrder, OrderRef
from ordersync.platforms.http import OverHttp, PermanentError, TransientError
from ordersync.platforms.shopify.bulk import BulkOrders, BulkUnavailable, Spool, bulk_threshold
from ordersync.platforms.shopify.client import ShopifyGraphQL
from ordersync.platforms.shopify.documents import (
    ID_BATCH,
    LINE_ITEMS_FOLLOW_UP_PAGE,
    LINE_ITEMS_PAGE_SIZE,
    MERCHANT_FO_LINES,
    MERCHANT_FULFILLMENT_ORDERS,
    MERCHANT_FULFILLMENTS,
    MERCHANT_TRACKING,
    ORDERS_PAGE_SIZE,
    search_value,
    shopify_time,
)
from ordersync.platforms.shopify.parse import is_shipping_line, merchant_order, tracking_of, user_errors
from ordersync.platforms.shopify.refunds import RefundsUnreadable, has_refunds, read_refunds
from ordersync.tracking.model import (
    FulfillmentOrder,
    FulfillmentOrderLine,
    MerchantFulfillment,
    MerchantFulfillmentState,
    Tracking,
)

log = logging.getLogger("ordersync")


class ShopifyMerchant(OverHttp):
    """Reads the merchant's orders."""

    def __init__(self, gql: ShopifyGraphQL) -> None:
        self.gql = gql
        self.http = gql.http

    def _orders(self, query: str) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        after: str | None = None
        while True:
            data = self.gql.execute(
                "MerchantOrders",
                {
                    "first": ORDERS_PAGE_SIZE,
                    "after": after,
                    "query": query,
                    "lineItems": LINE_ITEMS_PAGE_SIZE,
                },
            )
            connection = data["orders"]
            for node in connection["nodes"]:
                try:
                    lines = self._all_lines(node)
                    yield node, self._with_refunds(node, merchant_order(node, lines), lines), None
                except Exception as exc:  # one malformed order never stops the batch
                    yield (
                        node,
                        None,
                        f"cannot read merchant order {node.get('name') or node.get('id')}: {exc}",
                    )
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    def _with_refunds(
        self, node: dict[str, Any], order: MerchantOrder, lines: list[dict[str, Any]]
    ) -> MerchantOrder:
        """The order with its refunds, read by a second query when it has any (most orders have none)."""
        if not has_refunds(node, lines):
            return order
        try:
            return order.model_copy(update={"refunds": read_refunds(self.gql, order.id, order.name)})
        except RefundsUnreadable as exc:  # the order is still synced; its refunds go to a human
            log.warning("%s", exc)
            return order.model_copy(update={"refunds_unreadable": str(exc)})

    def _all_lines(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        connection = node["lineItems"]
        lines = list(connection["nodes"])
        page = connection["pageInfo"]
        while page["hasNextPage"]:
            data = self.gql.execute(
                "MerchantOrderLineItems",
                {"id": node["id"], "first": LINE_ITEMS_FOLLOW_UP_PAGE, "after": page["endCursor"]},
            )
            more = data["order"]["lineItems"]
            lines.extend(more["nodes"])
            page = more["pageInfo"]
        return lines

    def changed_since(
        self, since: datetime | None
    ) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        """Orders updated at or after ``since`` (all orders when None), oldest change first."""
        query = f"updated_at:>='{shopify_time(since)}'" if since else ""
        return self._orders(query)

    def count_orders(self, query: str, limit: int | None = None) -> tuple[int, bool]:
        """``ordersCount`` for the search ``query``: (count, exact). ``limit`` None counts uncapped."""
        data = self.gql.execute("MerchantOrdersCount", {"query": query, "limit": limit})["ordersCount"]
        return int(data["count"]), data.get("precision") != "AT_LEAST"

    def backlog_since(
        self, since: datetime | None, threshold: int | None = None
    ) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        """What :meth:`changed_since` reads, counted first: above ``threshold`` (``ORDERSYNC_BULK_THRESHOLD``,
        bulk.BULK_THRESHOLD by default) read with one bulk operation, else (or when the bulk operation gives
        no complete file) page by page. Either way the same orders, oldest change first."""
        query = f"updated_at:>='{shopify_time(since)}'" if since else ""
        limit = bulk_threshold() if threshold is None else threshold
        label = f"since {since.isoformat()}" if since else "in the store"
        try:
            count, exact = self.count_orders(query)
        except PermanentError as exc:
            log.warning("cannot count the merchant's changed orders (%s): reading them page by page", exc)
            yield from self._orders(query)
            return
        backlog = f"{'' if exact else 'at least '}{count:,} orders {label}"
        if count <= limit:
            log.info("%s (bulk threshold %s): reading them page by page", backlog, f"{limit:,}")
            yield from self._orders(query)
            return
        try:
            spool = BulkOrders(self.gql).run(query, backlog)
        except BulkUnavailable as exc:
            log.warning("%s: reading the backlog page by page instead", exc)
            yield from self._orders(query)
            return
        yield from self._spooled(spool)

    def _spooled(self, spool: Spool) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        try:
            for node, children in spool.orders():
                try:
                    shipping = [c for c in children if is_shipping_line(c)]
                    lines = [c for c in children if not is_shipping_line(c)]
                    yield node, self._with_refunds(node, merchant_order(node, lines, shipping), lines), None
                except Exception as exc:  # one malformed order never stops the batch
                    yield (
                        node,
                        None,
                        f"cannot read merchant order {node.get('name') or node.get('id')}: {exc}",
                    )
        finally:
            spool.close()

    def by_refs(self, refs: list[str]) -> Iterator[tuple[dict[str, Any], MerchantOrder | None, str | None]]:
        """Orders named by GID, numeric id or name (``#1001``)."""
        terms = []
        for ref in filter(None, map(OrderRef.parse, refs)):
            terms.append(
                f"id:{ref.number}" if ref.number is not None else f"name:{search_value(ref.name or '')}"
            )
        for start in range(0, len(terms), ID_BATCH):
            yield from self._orders(" OR ".join(terms[start : start + ID_BATCH]))

    # -- tracking_sync: the merchant side of a shipment -----------------------------------------------------------
    def fulfillment_state(self, order_id: str) -> MerchantFulfillmentState:
        """Open fulfilment orders (remaining quantity per line) and existing fulfilments of one merchant order."""
        data = self.gql.execute(
            "MerchantFulfillmentState",
            {
                "id": order_id,
                "fulfillmentOrders": MERCHANT_FULFILLMENT_ORDERS,
                "lineItems": MERCHANT_FO_LINES,
                "fulfillments": MERCHANT_FULFILLMENTS,
                "tracking": MERCHANT_TRACKING,
            },
        )
        order = data.get("order")
        if order is None:
            raise PermanentError(f"{self.gql.label}: merchant order {order_id} no longer exists")
        connection = order["fulfillmentOrders"]
        truncated = connection["pageInfo"]["hasNextPage"]
        fos = []
        for node in connection["nodes"]:
            truncated = truncated or node["lineItems"]["pageInfo"]["hasNextPage"]
            fos.append(
                FulfillmentOrder(
                    id=node["id"],
                    status=node["status"],
                    location_id=((node.get("assignedLocation") or {}).get("location") or {}).get("id"),
                    lines=[
                        FulfillmentOrderLine(
                            id=l["id"],
                            remaining=int(l["remainingQuantity"]),
                            sku=(l.get("lineItem") or {}).get("sku"),
                            vendor=(l.get("lineItem") or {}).get("vendor"),
                            line_item_id=(l.get("lineItem") or {}).get("id"),
                        )
                        for l in node["lineItems"]["nodes"]
                    ],
                )
            )
        if truncated:
            raise PermanentError(
                f"{self.gql.label}: merchant order {order['name']} has more than "
                f"{MERCHANT_FULFILLMENT_ORDERS} fulfilment orders or {MERCHANT_FO_LINES} lines in "
                "one: write its tracking by hand"
            )
        fulfillments = [
            MerchantFulfillment(
                id=f["id"],
                status=f.get("status") or "",
                created_at=f.get("createdAt"),
                tracking=tracking_of(f.get("trackingInfo") or [], map_company=False),
            )
            for f in order.get("fulfillments") or []
        ]
        return MerchantFulfillmentState(
            order_id=order["id"],
            name=order["name"],
            status=order.get("displayFulfillmentStatus") or "",
            fulfillment_orders=fos,
            fulfillments=fulfillments,
        )

    def create_fulfillment(self, groups: list[dict[str, Any]], tracking: Tracking, notify: bool) -> str:
        """fulfillmentCreate; returns the new fulfilment's GID."""
        fulfillment: dict[str, Any] = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify}
        info = tracking.as_input()
        if info:
            fulfillment["trackingInfo"] = info
        result = self.gql.execute("MerchantFulfillmentCreate", {"fulfillment": fulfillment}, mutation=True)[
            "fulfillmentCreate"
        ]
        if result.get("userErrors"):
            raise PermanentError(
                f"{self.gql.label}: fulfillmentCreate refused: {user_errors(result['userErrors'])}"
            )
        if not result.get("fulfillment"):
            raise TransientError(
                f"{self.gql.label}: fulfillmentCreate answered without a fulfillment", maybe_committed=True
            )
        return result["fulfillment"]["id"]

    def update_tracking(self, fulfillment_id: str, tracking: Tracking, notify: bool) -> None:
        """fulfillmentTrackingInfoUpdate: the fulfilment's tracking becomes ``tracking`` (idempotent)."""
        result = self.gql.execute(
            "MerchantFulfillmentTrackingUpdate",
            {
                "fulfillmentId": fulfillment_id,
                "trackingInfoInput": tracking.as_input(),
                "notifyCustomer": notify,
            },
            mutation=True,
        )["fulfillmentTrackingInfoUpdate"]
        if result.get("userErrors"):
            raise PermanentError(
                f"{self.gql.label}: fulfillmentTrackingInfoUpdate refused on {fulfillment_id}: "
                f"{user_errors(result['userErrors'])}"
            )

    def add_tags(self, order_id: str, tags: list[str]) -> None:
        """tagsAdd on a merchant order: the tags are added to those it has (a repeat changes nothing)."""
        result = self.gql.execute("MerchantTagsAdd", {"id": order_id, "tags": tags}, mutation=True)["tagsAdd"]
        if result.get("userErrors"):
            raise PermanentError(
                f"{self.gql.label}: tagsAdd refused on {order_id}: {user_errors(result['userErrors'])}"
            )
