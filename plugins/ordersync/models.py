"""Typed shapes of merchant orders and vendor orders, independent of any platform."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["pushed", "held", "skipped", "failed", "updated", "cancelled", "manual", "unchanged"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Address(_Model):
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None

    @property
    def recipient(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @classmethod
    def from_graphql(cls, node: dict[str, Any] | None) -> "Address | None":
        if not node:
            return None
        return cls(
            first_name=node.get("firstName"), last_name=node.get("lastName"), company=node.get("company"),
            address1=node.get("address1"), address2=node.get("address2"), city=node.get("city"),
            province_code=node.get("provinceCode"), zip=node.get("zip"),
            country_code=node.get("countryCodeV2"), phone=node.get("phone"),
        )


class Contact(_Model):
    """Who the vendor store sees as its customer and billing contact."""
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None

    @classmethod
    def from_full_name(cls, name: str, email: str | None, phone: str | None) -> "Contact":
        first, _, last = name.strip().partition(" ")
        return cls(first_name=first or None, last_name=last or None, email=email, phone=phone)


class LineItem(_Model):
    id: str
    title: str
    variant_title: str | None = None
    sku: str | None = None
    vendor: str | None = None
    quantity: int
    unit_price: Decimal
    currency: str
    unfulfilled_quantity: int | None = None   # None: not known (the merchant's fulfilments were not read)

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> "LineItem":
        money = ((node.get("originalUnitPriceSet") or {}).get("shopMoney")) or {}
        quantity = node.get("currentQuantity")
        if quantity is None:
            quantity = node.get("quantity") or 0
        return cls(
            id=node["id"], title=node.get("title") or "", variant_title=node.get("variantTitle"),
            sku=(node.get("sku") or None), vendor=(node.get("vendor") or None), quantity=int(quantity),
            unit_price=Decimal(str(money.get("amount", "0"))), currency=money.get("currencyCode") or "",
            unfulfilled_quantity=(None if node.get("unfulfilledQuantity") is None
                                  else int(node["unfulfilledQuantity"])),
        )


class MerchantOrder(_Model):
    id: str                                   # gid://shopify/Order/123
    legacy_id: str                            # 123
    name: str                                 # #1001
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    financial_status: str | None = None       # displayFinancialStatus
    fulfillment_status: str | None = None
    email: str | None = None
    phone: str | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()
    currency: str
    accepts_marketing: bool = False
    custom_attributes: tuple[tuple[str, str], ...] = ()
    customer: Contact | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    line_items: tuple[LineItem, ...] = ()

    @classmethod
    def from_graphql(cls, node: dict[str, Any], line_items: list[dict[str, Any]] | None = None) -> "MerchantOrder":
        customer = node.get("customer")
        contact = None
        if customer:
            contact = Contact(
                first_name=customer.get("firstName"), last_name=customer.get("lastName"),
                email=((customer.get("defaultEmailAddress") or {}).get("emailAddress")),
                phone=((customer.get("defaultPhoneNumber") or {}).get("phoneNumber")),
            )
        lines = line_items if line_items is not None else (node.get("lineItems") or {}).get("nodes", [])
        return cls(
            id=node["id"], legacy_id=str(node.get("legacyResourceId") or node["id"].rsplit("/", 1)[-1]),
            name=node["name"], created_at=node["createdAt"], updated_at=node["updatedAt"],
            cancelled_at=node.get("cancelledAt"), cancel_reason=node.get("cancelReason"), financial_status=node.get("displayFinancialStatus"),
            fulfillment_status=node.get("displayFulfillmentStatus"), email=node.get("email"),
            phone=node.get("phone"), note=node.get("note"), tags=tuple(node.get("tags") or ()),
            currency=node.get("currencyCode") or "", accepts_marketing=bool(node.get("customerAcceptsMarketing")),
            custom_attributes=tuple((a["key"], a.get("value") or "") for a in node.get("customAttributes") or ()),
            customer=contact, shipping_address=Address.from_graphql(node.get("shippingAddress")),
            billing_address=Address.from_graphql(node.get("billingAddress")),
            line_items=tuple(LineItem.from_graphql(n) for n in lines),
        )

    @property
    def buyer_name(self) -> str:
        if self.customer and (self.customer.first_name or self.customer.last_name):
            return " ".join(p for p in (self.customer.first_name, self.customer.last_name) if p)
        if self.billing_address:
            return self.billing_address.recipient
        return ""


class Mapping(_Model):
    """Where a merchant SKU lives in one vendor's store."""
    sku: str
    product_id: str
    variant_id: str | None = None


class VendorLine(_Model):
    merchant_line_id: str
    title: str
    variant_title: str | None = None
    sku: str | None = None
    quantity: int
    unit_price: Decimal
    mapping: Mapping | None = None            # None: pushed as a custom line


class VendorOrderDraft(_Model):
    """One vendor's share of one merchant order, ready for a platform adapter."""
    merchant_order_id: str
    merchant_order_name: str
    merchant_legacy_id: str
    vendor: str
    marker: str                               # link-back, unique per merchant order in a vendor store
    currency: str
    paid: bool
    financial_status: str | None
    lines: tuple[VendorLine, ...]
    contact: Contact                          # customer and billing contact
    billing_address: Address | None
    shipping_address: Address | None
    email: str | None
    phone: str | None
    note: str | None
    tags: tuple[str, ...]
    custom_attributes: tuple[tuple[str, str], ...] = ()
    accepts_marketing: bool | None = None     # None: not the buyer's to share (override on)
    location_id: str | None = None


class VendorOrderRef(_Model):
    id: str
    name: str


class VendorOrderState(_Model):
    """What a cancellation needs to know about the vendor's copy."""
    cancelled: bool
    fulfilled: bool
    status: str


class Decision(_Model):
    """What happened or will happen to one (merchant order, vendor) pair, and why."""
    outcome: Outcome
    reason: str
    rule: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)
