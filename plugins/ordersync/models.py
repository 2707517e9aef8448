"""Typed shapes of merchant orders and vendor orders, independent of any platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

# Shopify's OrderDisplayFinancialStatus: the merchant's payment state (the merchant store is Shopify).
FinancialStatus = Literal[
    "AUTHORIZED", "EXPIRED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "PENDING", "REFUNDED", "VOIDED"
]
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


class Contact(_Model):
    """Who the vendor store sees as its customer and billing contact."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None

    @classmethod
    def from_full_name(cls, name: str, email: str | None, phone: str | None) -> Contact:
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
    unfulfilled_quantity: int | None = None  # None: not known (the merchant's fulfilments were not read)


class MerchantOrder(_Model):
    id: str  # gid://shopify/Order/123
    legacy_id: str  # 123
    name: str  # #1001
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    financial_status: str | None = None  # displayFinancialStatus
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
    mapping: Mapping | None = None  # None: pushed as a custom line


class VendorOrderDraft(_Model):
    """One vendor's share of one merchant order, ready for a platform adapter."""

    merchant_order_id: str
    merchant_order_name: str
    merchant_legacy_id: str
    vendor: str
    marker: str  # link-back, unique per merchant order in a vendor store
    currency: str
    paid: bool
    financial_status: str | None
    lines: tuple[VendorLine, ...]
    contact: Contact  # customer and billing contact
    billing_address: Address | None
    shipping_address: Address | None
    email: str | None
    phone: str | None
    note: str | None
    tags: tuple[str, ...]
    custom_attributes: tuple[tuple[str, str], ...] = ()
    accepts_marketing: bool | None = None  # None: not the buyer's to share (override on)
    location_id: str | None = None


class VendorOrderRef(_Model):
    id: str
    name: str


class VendorOrderState(_Model):
    """What a cancellation needs to know about the vendor's copy."""

    cancelled: bool
    fulfilled: bool
    status: str


@dataclass(frozen=True)
class OrderRef:
    """A merchant order as an operator names it in ``order_ids``: its GID, its numeric id, or its name."""

    number: str | None = None  # the numeric id (from ``gid://shopify/Order/123`` or ``123``)
    name: str | None = None  # ``#1001`` (``1001`` would be an id; ``A-1001`` a name)

    @classmethod
    def parse(cls, raw: str) -> OrderRef | None:
        text = raw.strip()
        if not text:
            return None
        if text.startswith("gid://"):
            return cls(number=text.rsplit("/", 1)[-1])
        if text.isdigit():
            return cls(number=text)
        return cls(name=text if text.startswith("#") else f"#{text}")

    def matches(self, order_id: str, order_name: str, legacy_id: str | None = None) -> bool:
        if self.number is not None:
            return self.number in (
                legacy_id,
                order_id.rsplit("/", 1)[-1],
            ) or self.number == order_name.lstrip("#")
        return self.name == order_name
