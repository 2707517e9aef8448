"""Shopify's answers as ordersync's platform-free models: merchant orders, vendor shipments, userErrors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.models import Address, Contact, LineItem, MerchantOrder, ShippingLine, TaxLine
from ordersync.platforms.shopify.documents import SHIPPED_FULFILLMENTS, SHIPPING_LINES_PAGE_SIZE
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


def _amount(bag: dict[str, Any] | None) -> Decimal:
    return Decimal(str(((bag or {}).get("shopMoney") or {}).get("amount") or "0"))


def tax_lines(nodes: list[dict[str, Any]] | None) -> tuple[TaxLine, ...]:
    return tuple(
        TaxLine(
            title=t.get("title") or "",
            rate=None if t.get("rate") is None else Decimal(str(t["rate"])),
            price=_amount(t.get("priceSet")),
        )
        for t in nodes or ()
    )


def shipping_line(node: dict[str, Any]) -> ShippingLine:
    """A ``ShippingLine``: its price is what the buyer was charged (``discountedPriceSet``)."""
    price = node.get("discountedPriceSet") or node.get("originalPriceSet")
    return ShippingLine(
        id=node.get("id"),
        title=node.get("title") or "",
        code=node.get("code"),
        source=node.get("source"),
        price=_amount(price),
        original_price=_amount(node.get("originalPriceSet")),
        tax_lines=tax_lines(node.get("taxLines")),
    )


def is_shipping_line(node: dict[str, Any]) -> bool:
    """A bulk JSONL child that is a shipping line (the others are line items)."""
    return node.get("__typename") == "ShippingLine" or "/ShippingLine/" in str(node.get("id") or "")


RISK_ORDER = ("HIGH", "MEDIUM", "LOW", "NONE", "PENDING")


def risk(node: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """``Order.risk``: the highest assessed level (HIGH > MEDIUM > LOW > NONE > PENDING) and what the
    assessments say (each provider's facts, the recommendation last); (None, None) when not read."""
    if not node:
        return None, None
    assessments = node.get("assessments") or []
    levels = [a.get("riskLevel") for a in assessments if a.get("riskLevel")]
    level = min(
        levels, key=lambda v: RISK_ORDER.index(v) if v in RISK_ORDER else len(RISK_ORDER), default=None
    )
    words = []
    for a in assessments:
        provider = ((a.get("provider") or {}).get("title")) or "Shopify"
        facts = "; ".join(f["description"] for f in a.get("facts") or () if f.get("description"))
        words.append(f"{provider}: {a.get('riskLevel')}" + (f" ({facts})" if facts else ""))
    if node.get("recommendation") and assessments:
        words.append(f"recommendation {node['recommendation']}")
    return level, "; ".join(words) or None


def line_item(node: dict[str, Any]) -> LineItem:
    money = ((node.get("originalUnitPriceSet") or {}).get("shopMoney")) or {}
    quantity = node.get("currentQuantity")
    if quantity is None:
        quantity = node.get("quantity") or 0
    discount = sum(
        (_amount(d.get("allocatedAmountSet")) for d in node.get("discountAllocations") or ()), Decimal(0)
    )
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
        discount=discount,
        ordered_quantity=None if node.get("quantity") is None else int(node["quantity"]),
        tax_lines=tax_lines(node.get("taxLines")),
    )


def merchant_order(
    node: dict[str, Any],
    line_items: list[dict[str, Any]] | None = None,
    shipping_lines: list[dict[str, Any]] | None = None,
) -> MerchantOrder:
    """An ``Order`` node (``MerchantOrders`` document); ``line_items`` when they were read page by page,
    ``line_items`` and ``shipping_lines`` when read from a bulk file (children of the order)."""
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
    if shipping_lines is None:
        connection = node.get("shippingLines") or {}
        if (connection.get("pageInfo") or {}).get("hasNextPage"):
            raise ValueError(f"more than {SHIPPING_LINES_PAGE_SIZE} shipping lines: not read whole")
        shipping_lines = connection.get("nodes") or []
    risk_level, risk_message = risk(node.get("risk"))
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
        shipping_lines=tuple(shipping_line(n) for n in shipping_lines if not n.get("isRemoved")),
        taxes_included=bool(node.get("taxesIncluded")),
        discount_codes=tuple(node.get("discountCodes") or ()),
        risk_level=risk_level,
        risk_message=risk_message,
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
    """A vendor Shopify order with its (non-cancelled) fulfilments and, when it is cancelled, when, why
    (``cancelReason``) and the staff note; and whether a page cut something off."""
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
    cancelled = node.get("cancelledAt") is not None
    order = ShippedOrder(
        id=node["id"],
        name=node["name"],
        updated_at=parse_time(node.get("updatedAt")),
        status=node.get("displayFulfillmentStatus") or "",
        shipments=tuple(shipments),
        cancelled=cancelled,
        cancelled_at=parse_time(node.get("cancelledAt")),
        cancel_reason=f"cancelReason {node.get('cancelReason') or 'OTHER'}" if cancelled else None,
        cancel_note=((node.get("cancellation") or {}).get("staffNote") or None) if cancelled else None,
    )
    return order, truncated


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
