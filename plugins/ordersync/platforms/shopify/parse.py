"""Shopify's answers as ordersync's platform-free models: merchant orders, vendor shipments, userErrors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.models import Address, Contact, LineItem, MerchantOrder
from ordersync.platforms.shopify.documents import SHIPPED_FULFILLMENTS
from ordersync.tracking.carriers import shopify_company
from ordersync.tracking.model import Shipment, ShippedOrder, Tracking


def address(node: dict[str, Any] | None) -> Address | None:
    if not node:
        return None
    return Address(
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
        company=node.get("company"),
        address1=node.get("address1"),
        address2=node.get("address2"),
        city=node.get("city"),
        province_code=node.get("provinceCode"),
        zip=node.get("zip"),
        country_code=node.get("countryCodeV2"),
        phone=node.get("phone"),
    )


def line_item(node: dict[str, Any]) -> LineItem:
    money = ((node.get("originalUnitPriceSet") or {}).get("shopMoney")) or {}
    quantity = node.get("currentQuantity")
    if quantity is None:
        quantity = node.get("quantity") or 0
    return LineItem(
        id=node["id"],
        title=node.get("title") or "",
        variant_title=node.get("variantTitle"),
        sku=(node.get("sku") or None),
        vendor=(node.get("vendor") or None),
        quantity=int(quantity),
        unit_price=Decimal(str(money.get("amount", "0"))),
        currency=money.get("currencyCode") or "",
        unfulfilled_quantity=(
            None if node.get("unfulfilledQuantity") is None else int(node["unfulfilledQuantity"])
        ),
    )


def merchant_order(node: dict[str, Any], line_items: list[dict[str, Any]] | None = None) -> MerchantOrder:
    """An ``Order`` node (``MerchantOrders`` document); ``line_items`` when they were read page by page."""
    customer = node.get("customer")
    contact = None
    if customer:
        contact = Contact(
            first_name=customer.get("firstName"),
            last_name=customer.get("lastName"),
            email=((customer.get("defaultEmailAddress") or {}).get("emailAddress")),
            phone=((customer.get("defaultPhoneNumber") or {}).get("phoneNumber")),
        )
    lines = line_items if line_items is not None else (node.get("lineItems") or {}).get("nodes", [])
    return MerchantOrder(
        id=node["id"],
        legacy_id=str(node.get("legacyResourceId") or node["id"].rsplit("/", 1)[-1]),
        name=node["name"],
        created_at=node["createdAt"],
        updated_at=node["updatedAt"],
        cancelled_at=node.get("cancelledAt"),
        cancel_reason=node.get("cancelReason"),
        financial_status=node.get("displayFinancialStatus"),
        fulfillment_status=node.get("displayFulfillmentStatus"),
        email=node.get("email"),
        phone=node.get("phone"),
        note=node.get("note"),
        tags=tuple(node.get("tags") or ()),
        currency=node.get("currencyCode") or "",
        accepts_marketing=bool(node.get("customerAcceptsMarketing")),
        custom_attributes=tuple((a["key"], a.get("value") or "") for a in node.get("customAttributes") or ()),
        customer=contact,
        shipping_address=address(node.get("shippingAddress")),
        billing_address=address(node.get("billingAddress")),
        line_items=tuple(line_item(n) for n in lines),
    )


def user_errors(errors: list[dict[str, Any]], subject: str | None = "input") -> str:
    """Shopify ``userErrors`` as one line: ``field: message``, the field defaulting to ``subject``
    (``subject=None``: the messages alone)."""
    if subject is None:
        return "; ".join(e["message"] for e in errors)
    return "; ".join(f"{'.'.join(e.get('field') or []) or subject}: {e['message']}" for e in errors)


def tracking_of(infos: list[dict[str, Any]], map_company: bool = True) -> Tracking:
    numbers = [i.get("number") for i in infos]
    company = next((i.get("company") for i in infos if i.get("company")), None)
    return Tracking(
        company=shopify_company(company) if map_company else company,
        numbers=tuple(n for n in numbers if n),
        urls=tuple((i.get("url") or "") for i in infos if i.get("number"))
        if any(i.get("url") for i in infos)
        else (),
    )


def shipped_order(node: dict[str, Any]) -> tuple[ShippedOrder, bool]:
    """A vendor Shopify order with its (non-cancelled) fulfilments; and whether a page cut something off."""
    truncated = len(node.get("fulfillments") or []) >= SHIPPED_FULFILLMENTS
    shipments = []
    for f in node.get("fulfillments") or []:
        truncated = truncated or f["fulfillmentLineItems"]["pageInfo"]["hasNextPage"]
        if f.get("status") in ("CANCELLED", "ERROR", "FAILURE"):
            continue
        lines = tuple(
            ((n.get("lineItem") or {}).get("sku") or "", int(n["quantity"]))
            for n in f["fulfillmentLineItems"]["nodes"]
        )
        shipments.append(
            Shipment(
                key=f["id"],
                tracking=tracking_of(f.get("trackingInfo") or []),
                lines=lines,
                created_at=parse_time(f.get("createdAt")),
            )
        )
    order = ShippedOrder(
        id=node["id"],
        name=node["name"],
        updated_at=parse_time(node.get("updatedAt")),
        status=node.get("displayFulfillmentStatus") or "",
        shipments=tuple(shipments),
        cancelled=node.get("cancelledAt") is not None,
    )
    return order, truncated


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
