"""Shopify webhook topics and payloads for ``ShopifyStore`` (see its docstring for when each fires).

Payloads are Shopify's JSON webhook payloads, which are the REST Admin resources, built from the
store's GraphQL-shaped dicts: numeric ``id`` and ``admin_graphql_api_id`` (the GID), snake_case
keys, lower-case statuses (``financial_status: "paid"``, ``fulfillment_status: null | "partial" |
"fulfilled"``), money as strings with ``*_set`` bags (``{"shop_money": {"amount", "currency_code"},
"presentment_money": ...}``), times as ``2026-11-27T03:40:00+00:00`` (the store's timezone is UTC),
``tags`` as one comma-separated string. Fields the sandbox does not model are present with Shopify's
empty values (``[]``, ``null``, ``"0.00"``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from . import search as S

if TYPE_CHECKING:  # pragma: no cover
    from .shopify import ShopifyStore

# The topics the sandbox delivers: GraphQL WebhookSubscriptionTopic value -> REST-style topic name
# (the X-Shopify-Topic header). Any other valid topic can be subscribed to and never fires.
DELIVERED_TOPICS: dict[str, str] = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_EDITED": "orders/edited",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "REFUNDS_CREATE": "refunds/create",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENTS_UPDATE": "fulfillments/update",
}

# Shopify retries a failed delivery 8 times over 4 hours with exponential backoff (it publishes no
# exact intervals): this doubling schedule adds up to those 4 hours. Set it on a store to test with
# production timing; the stores default to COMPRESSED_RETRY_DELAYS.
PRODUCTION_RETRY_DELAYS: tuple[float, ...] = (56.5, 113, 226, 452, 904, 1807, 3614, 7229)
# The same shape compressed for tests: 8 retries, doubling from 0.05 s and capped at 1 s (4.55 s in all).
COMPRESSED_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0)
DELIVERY_TIMEOUT = 5.0  # Shopify waits 5 s for the answer
USER_AGENT = "Shopify-Captain-Hook"


def rest_topic(enum_value: str) -> str:
    """``ORDERS_CREATE`` -> ``orders/create`` (exact for the delivered topics, best effort otherwise)."""
    known = DELIVERED_TOPICS.get(enum_value)
    if known:
        return known
    resource, _, event = enum_value.lower().partition("_")
    return f"{resource}/{event}" if event else resource


def enum_topic(topic: str) -> str:
    """``orders/create`` or ``ORDERS_CREATE`` -> ``ORDERS_CREATE``."""
    return topic.strip().upper().replace("/", "_")


def include_fields(payload: Any, paths: list[str] | None) -> Any:
    """Only the ``includeFields`` paths (``"id"``, ``"line_items.sku"``) of ``payload``; all of it when empty."""
    if not paths:
        return payload
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return _prune(payload, tree)


def _prune(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_prune(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _prune(value[k], sub) for k, sub in tree.items() if k in value}
    return value


# --- small conversions -------------------------------------------------------------------------


def num(gid_value: Any) -> int | None:
    return S.numeric_id(gid_value)


def rest_time(value: Any) -> str | None:
    dt = S.parse_time(value)
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00") if dt else None


def _amount(bag: Any) -> str:
    try:
        return str(bag["shopMoney"]["amount"])
    except (KeyError, TypeError):
        return "0.00"


def money_set(bag: Any, currency: str) -> dict[str, Any]:
    bag = bag or {}
    shop = bag.get("shopMoney") or {"amount": "0.00", "currencyCode": currency}
    pres = bag.get("presentmentMoney") or shop
    return {
        "shop_money": {"amount": shop["amount"], "currency_code": shop["currencyCode"]},
        "presentment_money": {"amount": pres["amount"], "currency_code": pres["currencyCode"]},
    }


def _zero_set(currency: str) -> dict[str, Any]:
    return money_set(None, currency)


def rest_address(addr: dict[str, Any] | None) -> dict[str, Any] | None:
    if not addr:
        return None
    return {
        "first_name": addr.get("firstName"),
        "address1": addr.get("address1"),
        "phone": addr.get("phone"),
        "city": addr.get("city"),
        "zip": addr.get("zip"),
        "province": addr.get("province"),
        "country": addr.get("country"),
        "last_name": addr.get("lastName"),
        "address2": addr.get("address2"),
        "company": addr.get("company"),
        "latitude": addr.get("latitude"),
        "longitude": addr.get("longitude"),
        "name": addr.get("name"),
        "country_code": addr.get("countryCodeV2"),
        "province_code": addr.get("provinceCode"),
    }


def rest_customer(customer: dict[str, Any] | None, currency: str) -> dict[str, Any] | None:
    if not customer:
        return None
    return {
        "id": num(customer.get("id")),
        "email": customer.get("email"),
        "created_at": rest_time(customer.get("createdAt")),
        "updated_at": rest_time(customer.get("updatedAt")),
        "first_name": customer.get("firstName"),
        "last_name": customer.get("lastName"),
        "state": str(customer.get("state") or "disabled").lower(),
        "note": customer.get("note"),
        "verified_email": bool(customer.get("verifiedEmail", True)),
        "multipass_identifier": None,
        "tax_exempt": bool(customer.get("taxExempt")),
        "phone": customer.get("phone"),
        "currency": currency,
        "tags": ", ".join(customer.get("tags") or []),
        "admin_graphql_api_id": customer.get("id"),
        "default_address": None,
    }


def _line_fulfillment_status(li: dict[str, Any]) -> str | None:
    current = li.get("currentQuantity", li.get("quantity", 0))
    open_qty = li.get("unfulfilledQuantity", 0)
    if current > 0 and open_qty == 0:
        return "fulfilled"
    if 0 < open_qty < current:
        return "partial"
    return None


def rest_line_item(
    store: ShopifyStore, li: dict[str, Any], currency: str, quantity: int | None = None
) -> dict[str, Any]:
    variant = li.get("variant") if isinstance(li.get("variant"), dict) else None
    product = li.get("product") if isinstance(li.get("product"), dict) else None
    price_set = li.get("originalUnitPriceSet")
    return {
        "id": num(li.get("id")),
        "admin_graphql_api_id": li.get("id"),
        "attributed_staffs": [],
        "current_quantity": li.get("currentQuantity", li.get("quantity")),
        "fulfillable_quantity": li.get("unfulfilledQuantity", 0),
        "fulfillment_service": "manual",
        "fulfillment_status": _line_fulfillment_status(li),
        "gift_card": bool(li.get("isGiftCard")),
        "grams": 0,
        "name": li.get("name"),
        "price": _amount(price_set),
        "price_set": money_set(price_set, currency),
        "product_exists": product is not None,
        "product_id": num(product.get("id")) if product else None,
        "properties": [
            {"name": a.get("key"), "value": a.get("value")} for a in li.get("customAttributes") or []
        ],
        "quantity": li.get("quantity") if quantity is None else quantity,
        "requires_shipping": bool(li.get("requiresShipping", True)),
        "sku": li.get("sku"),
        "taxable": bool(li.get("taxable", True)),
        "title": li.get("title"),
        "total_discount": "0.00",
        "total_discount_set": _zero_set(currency),
        "variant_id": num(variant.get("id")) if variant else None,
        "variant_inventory_management": None,
        "variant_title": li.get("variantTitle"),
        "vendor": li.get("vendor"),
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def rest_shipping_line(sl: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "id": num(sl.get("id")),
        "carrier_identifier": sl.get("carrierIdentifier"),
        "code": sl.get("code"),
        "discounted_price": _amount(sl.get("discountedPriceSet")),
        "discounted_price_set": money_set(sl.get("discountedPriceSet"), currency),
        "is_removed": bool(sl.get("isRemoved")),
        "phone": sl.get("phone"),
        "price": _amount(sl.get("originalPriceSet")),
        "price_set": money_set(sl.get("originalPriceSet"), currency),
        "requested_fulfillment_service_id": None,
        "source": sl.get("source"),
        "title": sl.get("title"),
        "tax_lines": [],
        "discount_allocations": [],
    }


_FULFILLMENT_STATUS = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial", "RESTOCKED": "restocked"}


def _order_token(order: dict[str, Any]) -> str:
    return hashlib.md5(str(order["id"]).encode()).hexdigest()  # noqa: S324 - an opaque token, not security


# --- resources ---------------------------------------------------------------------------------


def rest_order(store: ShopifyStore, order: dict[str, Any]) -> dict[str, Any]:
    """The REST Admin order (the ``orders/*`` payload)."""
    cur = order["currencyCode"]
    oid = num(order["id"])
    customer = order.get("customer")
    subtotal = order.get("subtotalPriceSet")
    return {
        "id": oid,
        "admin_graphql_api_id": order["id"],
        "app_id": None,
        "browser_ip": order.get("clientIp"),
        "buyer_accepts_marketing": bool(order.get("customerAcceptsMarketing")),
        "cancel_reason": str(order["cancelReason"]).lower() if order.get("cancelReason") else None,
        "cancelled_at": rest_time(order.get("cancelledAt")),
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": None,
        "client_details": None,
        "closed_at": rest_time(order.get("closedAt")),
        "confirmation_number": order.get("confirmationNumber"),
        "confirmed": bool(order.get("confirmed", True)),
        "contact_email": order.get("email"),
        "created_at": rest_time(order.get("createdAt")),
        "currency": cur,
        "current_subtotal_price": _amount(order.get("currentSubtotalPriceSet")),
        "current_subtotal_price_set": money_set(order.get("currentSubtotalPriceSet"), cur),
        "current_total_discounts": _amount(order.get("currentTotalDiscountsSet")),
        "current_total_discounts_set": money_set(order.get("currentTotalDiscountsSet"), cur),
        "current_total_price": _amount(order.get("currentTotalPriceSet")),
        "current_total_price_set": money_set(order.get("currentTotalPriceSet"), cur),
        "current_total_tax": _amount(order.get("currentTotalTaxSet")),
        "current_total_tax_set": money_set(order.get("currentTotalTaxSet"), cur),
        "customer_locale": order.get("customerLocale"),
        "device_id": None,
        "discount_codes": [],
        "duties_included": bool(order.get("dutiesIncluded")),
        "email": order.get("email"),
        "estimated_taxes": bool(order.get("estimatedTaxes")),
        "financial_status": str(order.get("displayFinancialStatus") or "pending").lower(),
        "fulfillment_status": _FULFILLMENT_STATUS.get(order.get("displayFulfillmentStatus") or ""),
        "landing_site": None,
        "location_id": None,
        "merchant_of_record_app_id": None,
        "name": order.get("name"),
        "note": order.get("note"),
        "note_attributes": [
            {"name": a.get("key"), "value": a.get("value")} for a in order.get("customAttributes") or []
        ],
        "number": order.get("number"),
        "order_number": (order.get("number") or 0) + 1000,
        "order_status_url": f"https://{store.domain}/{oid}/orders/{_order_token(order)}/authenticate",
        "original_total_duties_set": None,
        "payment_gateway_names": list(order.get("paymentGatewayNames") or []),
        "phone": order.get("phone"),
        "po_number": order.get("poNumber"),
        "presentment_currency": order.get("presentmentCurrencyCode") or cur,
        "processed_at": rest_time(order.get("processedAt")),
        "reference": None,
        "referring_site": None,
        "source_identifier": order.get("sourceIdentifier"),
        "source_name": order.get("sourceName"),
        "source_url": order.get("sourceUrl"),
        "subtotal_price": _amount(subtotal),
        "subtotal_price_set": money_set(subtotal, cur),
        "tags": ", ".join(order.get("tags") or []),
        "tax_exempt": bool(order.get("taxExempt")),
        "tax_lines": [],
        "taxes_included": bool(order.get("taxesIncluded")),
        "test": bool(order.get("test")),
        "token": _order_token(order),
        "total_discounts": _amount(order.get("totalDiscountsSet")),
        "total_discounts_set": money_set(order.get("totalDiscountsSet"), cur),
        "total_line_items_price": _amount(subtotal),
        "total_line_items_price_set": money_set(subtotal, cur),
        "total_outstanding": _amount(order.get("totalOutstandingSet")),
        "total_price": _amount(order.get("totalPriceSet")),
        "total_price_set": money_set(order.get("totalPriceSet"), cur),
        "total_shipping_price_set": money_set(order.get("totalShippingPriceSet"), cur),
        "total_tax": _amount(order.get("totalTaxSet")),
        "total_tax_set": money_set(order.get("totalTaxSet"), cur),
        "total_tip_received": "0.00",
        "total_weight": 0,
        "updated_at": rest_time(order.get("updatedAt")),
        "user_id": None,
        "billing_address": rest_address(order.get("billingAddress")),
        "customer": rest_customer(customer if isinstance(customer, dict) else None, cur),
        "discount_applications": [],
        "fulfillments": [rest_fulfillment(store, order, f) for f in order.get("fulfillments") or []],
        "line_items": [rest_line_item(store, li, cur) for li in order.get("lineItems") or []],
        "payment_terms": None,
        "refunds": [rest_refund(store, order, r) for r in order.get("refunds") or []],
        "shipping_address": rest_address(order.get("shippingAddress")),
        "shipping_lines": [rest_shipping_line(sl, cur) for sl in order.get("shippingLines") or []],
    }


def rest_fulfillment(store: ShopifyStore, order: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    """The REST Admin fulfillment (the ``fulfillments/*`` payload)."""
    cur = order["currencyCode"]
    tracking = f.get("trackingInfo") or []
    numbers = [t["number"] for t in tracking if t.get("number")]
    urls = [t["url"] for t in tracking if t.get("url")]
    company = next((t["company"] for t in tracking if t.get("company")), None)
    lines = []
    for fli in f.get("fulfillmentLineItems") or []:
        li = store._deref("LineItem", fli.get("lineItem"))
        if isinstance(li, dict) and li.get("title") is not None:
            lines.append(rest_line_item(store, li, cur, quantity=fli.get("quantity")))
    return {
        "id": num(f["id"]),
        "admin_graphql_api_id": f["id"],
        "created_at": rest_time(f.get("createdAt")),
        "location_id": num((f.get("location") or {}).get("id")),
        "name": f.get("name"),
        "order_id": num(order["id"]),
        "origin_address": {},
        "receipt": {},
        "service": "manual",
        "shipment_status": None,
        "status": str(f.get("status") or "success").lower(),
        "tracking_company": company,
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
        "updated_at": rest_time(f.get("updatedAt")),
        "line_items": lines,
    }


def rest_refund(store: ShopifyStore, order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    """The REST Admin refund (the ``refunds/create`` payload)."""
    cur = order["currencyCode"]
    oid = num(order["id"])
    refund_lines = []
    for rli in refund.get("refundLineItems") or []:
        li = store._deref("LineItem", rli.get("lineItem"))
        refund_lines.append(
            {
                "id": num(rli.get("id")),
                "line_item_id": num((rli.get("lineItem") or {}).get("id")),
                "location_id": num((rli.get("location") or {}).get("id")),
                "quantity": rli.get("quantity"),
                "restock_type": str(rli.get("restockType") or "NO_RESTOCK").lower(),
                "subtotal": _amount(rli.get("subtotalSet")),
                "subtotal_set": money_set(rli.get("subtotalSet"), cur),
                "total_tax": _amount(rli.get("totalTaxSet")) if rli.get("totalTaxSet") else "0.00",
                "total_tax_set": money_set(rli.get("totalTaxSet"), cur),
                "line_item": rest_line_item(store, li, cur)
                if isinstance(li, dict) and "title" in li
                else None,
            }
        )
    transactions = [
        {
            "id": num(t.get("id")),
            "admin_graphql_api_id": t.get("id"),
            "amount": _amount(t.get("amountSet")),
            "authorization": None,
            "created_at": rest_time(t.get("createdAt")),
            "currency": cur,
            "device_id": None,
            "error_code": None,
            "gateway": t.get("gateway") or "manual",
            "kind": str(t.get("kind") or "REFUND").lower(),
            "location_id": None,
            "message": None,
            "order_id": oid,
            "parent_id": None,
            "processed_at": rest_time(t.get("processedAt")),
            "receipt": {},
            "source_name": "web",
            "status": str(t.get("status") or "SUCCESS").lower(),
            "test": bool(t.get("test")),
            "user_id": None,
        }
        for t in refund.get("transactions") or []
    ]
    return {
        "id": num(refund["id"]),
        "admin_graphql_api_id": refund["id"],
        "created_at": rest_time(refund.get("createdAt")),
        "note": refund.get("note"),
        "order_id": oid,
        "processed_at": rest_time(refund.get("processedAt")),
        "restock": any(r.get("restocked") for r in refund.get("refundLineItems") or []),
        "total_duties_set": _zero_set(cur),
        "user_id": None,
        "order_adjustments": [],
        "transactions": transactions,
        "refund_line_items": refund_lines,
        "refund_shipping_lines": [
            {
                "id": num(rsl.get("id")),
                "shipping_line_id": num((rsl.get("shippingLine") or {}).get("id")),
                "subtotal_amount_set": money_set(rsl.get("subtotalAmountSet"), cur),
                "tax_amount_set": money_set(rsl.get("taxAmountSet"), cur),
            }
            for rsl in refund.get("refundShippingLines") or []
        ],
        "duties": [],
    }


def order_edit(
    store: ShopifyStore,
    order: dict[str, Any],
    before: dict[str, int],
    after: dict[str, int],
    stamp: str,
    edit_id: int,
    staff_note: str | None = None,
) -> dict[str, Any]:
    """The ``orders/edited`` payload: line quantities added and removed (``{line GID: quantity}``)."""
    additions, removals = [], []
    for line_id in list(before) + [k for k in after if k not in before]:
        delta = after.get(line_id, 0) - before.get(line_id, 0)
        if delta > 0:
            additions.append({"id": num(line_id), "delta": delta})
        elif delta < 0:
            removals.append({"id": num(line_id), "delta": -delta})
    return {
        "order_edit": {
            "id": edit_id,
            "app_id": None,
            "created_at": rest_time(stamp),
            "committed_at": rest_time(stamp),
            "notify_customer": False,
            "order_id": num(order["id"]),
            "staff_note": staff_note or "",
            "user_id": None,
            "line_items": {"additions": additions, "removals": removals},
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []},
        }
    }
