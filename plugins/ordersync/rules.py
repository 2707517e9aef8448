"""One small pure function per operator setting.

Each takes the settings and the facts it needs and returns a
:class:`RuleDecision`: whether the order (or one vendor's share of it) may go
on, and a reason an operator can read in the task log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ordersync.models import Address, Contact, LineItem, Mapping, MerchantOrder, Outcome
from ordersync.settings import Settings, VendorConfig


@dataclass(frozen=True)
class RuleDecision:
    rule: str
    allow: bool
    reason: str
    outcome: Outcome = "pushed"  # when not allowed: "held" (comes back by itself) or "skipped"
    hold_kind: str | None = None  # "unpaid" / "unmapped": why a held pair waits; "history" / "fulfilled": a
    # skip reported once, not again on every run that re-reads the order


def allow(rule: str, reason: str) -> RuleDecision:
    return RuleDecision(rule, True, reason)


def block(rule: str, outcome: Outcome, reason: str, hold_kind: str | None = None) -> RuleDecision:
    return RuleDecision(rule, False, reason, outcome, hold_kind)


def master_switch(settings: Settings) -> RuleDecision:
    if settings.order_sync_enabled:
        return allow("order_sync_enabled", "order sync is on")
    return block(
        "order_sync_enabled",
        "skipped",
        "order sync is switched off (order_sync_enabled=false): nothing is pushed, edited or cancelled",
    )


def not_cancelled(order: MerchantOrder) -> RuleDecision:
    if order.cancelled_at is None:
        return allow("cancelled", "order is not cancelled")
    return block(
        "cancelled",
        "skipped",
        f"order was cancelled at the merchant on {order.cancelled_at:%Y-%m-%d %H:%M} UTC",
    )


def order_status_filter(settings: Settings, order: MerchantOrder) -> RuleDecision:
    wanted = settings.order_status_filter
    if not wanted:
        return allow("order_status_filter", "no status filter set")
    status = order.financial_status or "UNKNOWN"
    if status in wanted:
        return allow(
            "order_status_filter", f"financial status {status} is in ({settings.said('order_status_filter')})"
        )
    return block(
        "order_status_filter",
        "skipped",
        f"financial status {status} is not in the status filter ({settings.said('order_status_filter')})",
    )


def push_only_if_paid(settings: Settings, order: MerchantOrder) -> RuleDecision:
    status = order.financial_status or "UNKNOWN"
    if not settings.push_only_if_paid:
        return allow("push_only_if_paid", f"order is {status} ({settings.said('push_only_if_paid')})")
    if status == "PAID":
        return allow("push_only_if_paid", "order is PAID")
    return block(
        "push_only_if_paid",
        "held",
        f"order is {status}, not PAID ({settings.said('push_only_if_paid')}); it is pushed once paid",
        "unpaid",
    )


def push_delay(settings: Settings, order: MerchantOrder, now: datetime, named: bool) -> RuleDecision:
    """``push_delay_minutes``: an order younger than the delay is held (time for fraud checks and buyer edits);
    the first run after the delay pushes it, changed or not (held-by-delay orders are re-read). A manual run
    naming the order pushes it now."""
    delay = settings.push_delay_minutes
    if delay <= 0:
        return allow("push_delay_minutes", "no push delay")
    due = order.created_at + timedelta(minutes=delay)
    if now >= due:
        return allow(
            "push_delay_minutes", f"created {delay} min or more ago ({settings.said('push_delay_minutes')})"
        )
    if named:
        return allow(
            "push_delay_minutes",
            f"push delay waived: this manual run names the order ({settings.said('push_delay_minutes')})",
        )
    return block(
        "push_delay_minutes",
        "held",
        f"pushed after {due:%Y-%m-%d %H:%M} UTC: created {order.created_at:%H:%M} UTC, younger than the push "
        f"delay ({settings.said('push_delay_minutes')})",
        "delay",
    )


def risky_order(settings: Settings, order: MerchantOrder, named: bool) -> RuleDecision:
    """``hold_risky_orders``: an order Shopify's risk assessment rates HIGH is held, with what the assessment
    says; it is pushed when the level drops (held risky orders are re-read every run) or by a manual run naming
    it."""
    if not settings.hold_risky_orders:
        return allow("hold_risky_orders", f"risk not checked ({settings.said('hold_risky_orders')})")
    level = (order.risk_level or "").upper()
    if level != "HIGH":
        return allow("hold_risky_orders", f"risk level {level or 'not assessed'}")
    words = f": {order.risk_message}" if order.risk_message else ""
    if named:
        return allow(
            "hold_risky_orders",
            f"risk HIGH{words}; pushed because this manual run names the order "
            f"({settings.said('hold_risky_orders')})",
        )
    return block(
        "hold_risky_orders",
        "held",
        f"Shopify rates the order's risk HIGH{words} ({settings.said('hold_risky_orders')}); it is pushed when "
        "the risk drops, or by a manual run naming it",
        "risk",
    )


def sync_horizon(
    settings: Settings, order: MerchantOrder, horizon: datetime | None, named: bool
) -> RuleDecision:
    """History — orders created before the sync horizon the first run recorded — is never pushed by scheduled
    runs, even when it changes later; a manual run naming the order pushes it."""
    if horizon is None or order.created_at >= horizon:
        return allow("initial_lookback_hours", "created after the sync horizon")
    if named:
        return allow(
            "initial_lookback_hours",
            "created before the sync horizon, pushed because this manual run names it",
        )
    return block(
        "initial_lookback_hours",
        "skipped",
        f"history: created {order.created_at:%Y-%m-%d %H:%M} UTC, before the sync horizon "
        f"{horizon:%Y-%m-%d %H:%M} UTC (the first run's start minus initial_lookback_hours="
        f"{settings.initial_lookback_hours}); not pushed, even when it changes — a manual run naming it "
        "in order_ids pushes it",
        "history",
    )


def merchant_fulfilled(order: MerchantOrder, lines: list[LineItem]) -> RuleDecision:
    """An order (or this vendor's lines of it) the merchant already shipped itself is not pushed: the vendor
    would ship it a second time. Whatever the settings."""
    if order.fulfillment_status == "FULFILLED":
        return block(
            "fulfilled",
            "skipped",
            "already fulfilled at the merchant (the merchant shipped all its lines itself); not pushed",
            "fulfilled",
        )
    if lines and all(line.unfulfilled_quantity == 0 for line in lines):
        return block(
            "fulfilled",
            "skipped",
            "already fulfilled at the merchant (the merchant shipped this vendor's lines itself); not pushed",
            "fulfilled",
        )
    return allow("fulfilled", "not fulfilled at the merchant")


def vendor_eligible(settings: Settings, vendor: str | None, vendors: dict[str, VendorConfig]) -> RuleDecision:
    if not vendor:
        return block("vendor", "skipped", "line item has no vendor; set the product's vendor at the merchant")
    config = vendors.get(vendor)
    if config is None:
        return block("vendor", "skipped", f"vendor {vendor!r} is not in ordersync_vendors")
    if not config.enabled:
        return block("vendor", "skipped", f"vendor {vendor!r} is disabled in ordersync_vendors")
    if config.platform not in settings.order_push_platforms:
        return block(
            "order_push_platforms",
            "skipped",
            f"order push for platform {config.platform} is not active (order_push_platforms="
            f"{list(settings.order_push_platforms)})",
        )
    return allow("vendor", f"vendor {vendor!r} on {config.platform} is enabled")


def unmapped_products(
    settings: Settings, lines: list[LineItem], mappings: dict[str, Mapping]
) -> RuleDecision:
    """A line is mapped when its SKU resolves to a product in the vendor's store."""
    unmapped = [line for line in lines if not line.sku or line.sku not in mappings]
    if not unmapped:
        return allow("push_unmapped_products", "every line is mapped to a vendor product")
    described = ", ".join(f"{line.title!r} (SKU {line.sku or 'missing'})" for line in unmapped)
    if settings.push_unmapped_products:
        return allow(
            "push_unmapped_products",
            f"pushing unmapped line(s) as custom lines ({settings.said('push_unmapped_products')}): {described}",
        )
    return block(
        "push_unmapped_products",
        "held",
        f"held until mapped: no product in the vendor store for {described} "
        f"({settings.said('push_unmapped_products')})",
        "unmapped",
    )


@dataclass(frozen=True)
class CustomerData:
    contact: Contact
    email: str | None
    phone: str | None
    billing_address: Address | None
    shipping_address: Address | None
    reason: str = field(default="")


def customer_override(settings: Settings, order: MerchantOrder) -> CustomerData:
    """Who the vendor sees as customer: the buyer, or the merchant when the override is on.

    With the override on, the buyer's e-mail and phone reach the vendor nowhere
    and the buyer's name travels only as the shipping recipient.
    """
    if not settings.override_customer_data:
        buyer = order.customer or Contact()
        contact = Contact(
            first_name=buyer.first_name
            or (order.billing_address.first_name if order.billing_address else None),
            last_name=buyer.last_name or (order.billing_address.last_name if order.billing_address else None),
            email=order.email or buyer.email,
            phone=order.phone or buyer.phone,
        )
        return CustomerData(
            contact,
            contact.email,
            contact.phone,
            order.billing_address,
            order.shipping_address,
            f"buyer is the vendor's customer ({settings.said('override_customer_data')})",
        )
    merchant = settings.merchant_contact
    assert merchant is not None  # enforced by Settings
    contact = Contact.from_full_name(merchant.name, str(merchant.email), merchant.phone)
    billing = Address(first_name=contact.first_name, last_name=contact.last_name, phone=merchant.phone)
    shipping = (
        order.shipping_address.model_copy(update={"phone": merchant.phone})
        if order.shipping_address
        else None
    )
    return CustomerData(
        contact,
        contact.email,
        contact.phone,
        billing,
        shipping,
        f"merchant contact replaces the buyer ({settings.said('override_customer_data')})",
    )


def location(
    settings: Settings, vendor: VendorConfig, platform_has_locations: bool
) -> tuple[str | None, str]:
    """The vendor location a new vendor order is assigned to (None = the store's default)."""
    if not settings.locations_addon:
        return None, f"vendor default location ({settings.said('locations_addon')})"
    if not vendor.location_id:
        return None, "vendor default location (no location_id for this vendor)"
    if not platform_has_locations:
        return None, f"{vendor.platform} has no locations; location_id ignored"
    return vendor.location_id, f"location {vendor.location_id} ({settings.said('locations_addon')})"


def order_rules(
    settings: Settings, order: MerchantOrder, now: datetime | None = None, named: bool = False
) -> list[RuleDecision]:
    """The order-level rules in the order an operator reads them, with the settings that apply to one vendor
    (``Env.settings_for``). ``named``: a manual run names the order (it waives the push delay and the risk
    hold)."""
    return [
        master_switch(settings),
        not_cancelled(order),
        order_status_filter(settings, order),
        push_only_if_paid(settings, order),
        push_delay(settings, order, now or datetime.now(UTC), named),
        risky_order(settings, order, named),
    ]


def first_block(decisions: list[RuleDecision]) -> RuleDecision | None:
    return next((d for d in decisions if not d.allow), None)
