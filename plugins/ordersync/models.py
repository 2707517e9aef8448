"""Typed shapes of merchant orders and vendor orders, independent of any platform."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

# Shopify's OrderDisplayFinancialStatus: the merchant's payment state (the merchant store is Shopify).
FinancialStatus = Literal[
    "AUTHORIZED", "EXPIRED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "PENDING", "REFUNDED", "VOIDED"
]
Outcome = Literal[
    "pushed", "held", "skipped", "failed", "updated", "cancelled", "refunded", "manual", "unchanged"
]


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


CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


K = TypeVar("K", bound=Hashable)


def split_amount(total: Decimal, weights: dict[K, Decimal]) -> dict[K, Decimal]:
    """``total`` split over the keys by weight, each share rounded to the cent and the rounding remainder
    on the largest weight (the first of equals), so the shares add up to ``total`` exactly. All weights
    zero: equal weights."""
    if not weights:
        return {}
    if not any(w > 0 for w in weights.values()):
        weights = dict.fromkeys(weights, Decimal(1))
    whole = sum((w for w in weights.values() if w > 0), Decimal("0"))
    shares = {k: cents(total * max(w, Decimal("0")) / whole) for k, w in weights.items()}
    largest = max(weights, key=lambda k: weights[k])  # max() keeps the first of equals
    shares[largest] += total - sum(shares.values(), Decimal("0"))
    return shares


class TaxLine(_Model):
    """One tax charged on a line or a shipping line (Shopify ``TaxLine``): ``price`` is the amount."""

    title: str
    rate: Decimal | None = None  # 0.2 = 20 %
    price: Decimal = Decimal("0")


class ShippingLine(_Model):
    """A shipping method of the order; ``price`` what is charged for it (the merchant's: after shipping
    discounts, Shopify ``discountedPriceSet``; on a vendor order: that vendor's share)."""

    title: str
    code: str | None = None
    source: str | None = None
    price: Decimal = Decimal("0")
    id: str | None = None  # the merchant's ShippingLine GID (a shipping refund names it)
    original_price: Decimal | None = None  # before shipping discounts (merchant side only)
    tax_lines: tuple[TaxLine, ...] = ()


class LineItem(_Model):
    id: str
    title: str
    variant_title: str | None = None
    sku: str | None = None
    vendor: str | None = None
    quantity: int  # the current quantity (after order edits)
    unit_price: Decimal  # the original unit price, before any discount
    currency: str
    unfulfilled_quantity: int | None = None  # None: not known (the merchant's fulfilments were not read)
    # Discounts Shopify allocated to this line (its own and its share of order-level ones), over
    # ``ordered_quantity`` units; and the line's tax lines, over the same units
    discount: Decimal = Decimal("0")
    ordered_quantity: int | None = None  # the quantity ordered (None: ``quantity``)
    tax_lines: tuple[TaxLine, ...] = ()

    def _share(self, amount: Decimal) -> Decimal:
        ordered = self.ordered_quantity or self.quantity
        if ordered <= 0 or ordered == self.quantity:
            return amount
        return cents(amount * self.quantity / ordered)

    @property
    def paid_total(self) -> Decimal:
        """What the buyer paid for this line's current quantity: the original price less its discounts,
        exact to the cent (for a quantity cut by an edit, that part of it)."""
        ordered = self.ordered_quantity or self.quantity
        return self._share(cents(self.unit_price * ordered - self.discount))

    @property
    def current_tax_lines(self) -> tuple[TaxLine, ...]:
        """The tax lines of the current quantity."""
        return tuple(t.model_copy(update={"price": self._share(t.price)}) for t in self.tax_lines)


class RefundLine(_Model):
    """A line of a merchant refund (Shopify ``RefundLineItem``)."""

    line_item_id: str
    quantity: int
    restock_type: str = "NO_RESTOCK"  # RefundLineItemRestockType: CANCEL, RETURN, LEGACY_RESTOCK, NO_RESTOCK
    subtotal: Decimal = Decimal("0")  # what the refunded units cost the buyer, after their discounts
    tax: Decimal = Decimal("0")

    @property
    def restocked(self) -> bool:
        return self.restock_type != "NO_RESTOCK"


class Refund(_Model):
    """A refund of the merchant order: the lines and shipping it gave back."""

    id: str  # gid://shopify/Refund/123
    created_at: datetime
    note: str | None = None
    lines: tuple[RefundLine, ...] = ()
    shipping: Decimal = Decimal("0")  # shipping refunded, over all the order's shipping lines
    shipping_tax: Decimal = Decimal("0")
    # what it refunded of each shipping line: (the line's GID, amount); a vendor's part is split per line, as
    # the line's price was when the vendor order was created
    shipping_lines: tuple[tuple[str, Decimal], ...] = ()

    @property
    def number(self) -> str:
        return self.id.rsplit("/", 1)[-1]


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
    shipping_lines: tuple[ShippingLine, ...] = ()  # not removed ones
    taxes_included: bool = False  # the line prices include their taxes
    discount_codes: tuple[str, ...] = ()
    # Shopify's risk assessment (Order.risk): the highest assessed level (HIGH, MEDIUM, LOW, NONE, PENDING) and
    # what the assessment says; None when not read
    risk_level: str | None = None
    risk_message: str | None = None
    refunds: tuple[Refund, ...] = ()  # oldest first
    refunds_unreadable: str | None = None  # why the refunds could not be read whole (mirrored by hand)

    def refunded_quantity(self, line_item_id: str) -> int:
        return sum(
            r.quantity for refund in self.refunds for r in refund.lines if r.line_item_id == line_item_id
        )


class Mapping(_Model):
    """Where a merchant SKU lives in one vendor's store."""

    sku: str
    product_id: str
    variant_id: str | None = None
    # Set by a catalog lookup when several live products carry the SKU: each one described (title and ids).
    # product_id/variant_id then name only the first: such a line is held as ambiguous, never pushed, and the
    # mapping is not kept in the ledger's cache (which stores sku, product_id and variant_id only).
    ambiguous: tuple[str, ...] = ()


class VendorLine(_Model):
    merchant_line_id: str
    title: str
    variant_title: str | None = None
    sku: str | None = None
    quantity: int
    unit_price: Decimal  # after the line's discounts, rounded to the cent (``total`` is exact)
    mapping: Mapping | None = None  # None: pushed as a custom line
    total: Decimal | None = None  # what the buyer paid for the line (None: unit_price x quantity)
    tax_lines: tuple[TaxLine, ...] = ()  # the merchant line's taxes (for this quantity)

    @property
    def line_total(self) -> Decimal:
        return self.total if self.total is not None else cents(self.unit_price * self.quantity)


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
    shipping_lines: tuple[ShippingLine, ...] = ()  # the buyer's methods, priced by ``vendor_shipping``
    taxes_included: bool = False
    discount_codes: tuple[str, ...] = ()


class VendorRefundLine(_Model):
    """A refunded line as the vendor order is to record it: found there by SKU (else title)."""

    merchant_line_id: str
    sku: str | None
    title: str
    quantity: int
    restock: bool  # restocked at the merchant: restock at the vendor too
    amount: Decimal  # the line's refunded value (the merchant's subtotal for these units)


class VendorRefund(_Model):
    """One merchant refund's part for one vendor order, recorded there with no money moved."""

    merchant_refund_id: str
    merchant_order_name: str
    marker: str  # in the vendor refund's note or reason: finds it again after a lost answer
    key: str  # idempotency key (Shopify ``@idempotent``), from the ledger's refund row
    currency: str
    lines: tuple[VendorRefundLine, ...] = ()
    shipping: Decimal = Decimal("0")  # this vendor's part of the shipping refunded

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0")) + self.shipping

    @property
    def note(self) -> str:
        return f"Refunded at the marketplace: {self.merchant_order_name} ({self.marker})"


class RecordedRefund(_Model):
    """The vendor refund a part is recorded as: ``found`` when an earlier attempt had created it already."""

    id: str
    found: bool = False
    shipped_units: int = 0  # refunded units the vendor had already fulfilled (reported)


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
