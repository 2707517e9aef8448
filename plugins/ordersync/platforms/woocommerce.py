"""WooCommerce vendor stores through the REST API v3 (``/wp-json/wc/v3``)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from ordersync.models import Address, Mapping, VendorOrderDraft, VendorOrderRef, VendorOrderState
from ordersync.platforms.transport import JsonHttp, OverHttp, RetryPolicy, StoreError, TransientError

SKU_BATCH = 50
PAGE_SIZE = 100
LOOKUP_MAX_PAGES = 20
MARKER_KEY = "_ordersync_marker"
MERCHANT_ORDER_KEY = "_ordersync_merchant_order"
MERCHANT_ORDER_ID_KEY = "_ordersync_merchant_order_id"


def _address(address: Address | None, email: str | None = None) -> dict[str, Any]:
    if address is None:
        out: dict[str, Any] = {}
    else:
        out = {"first_name": address.first_name, "last_name": address.last_name, "company": address.company,
               "address_1": address.address1, "address_2": address.address2, "city": address.city,
               "state": address.province_code, "postcode": address.zip, "country": address.country_code,
               "phone": address.phone}
    if email:
        out["email"] = email
    return {k: v for k, v in out.items() if v not in (None, "")}


def _total(price: Decimal, quantity: int) -> str:
    return str((price * quantity).quantize(Decimal("0.01")))


def build_order_payload(draft: VendorOrderDraft) -> dict[str, Any]:
    """The ``POST /orders`` body for one vendor's share (pure; unit-tested)."""
    lines, fees = [], []
    for line in draft.lines:
        total = _total(line.unit_price, line.quantity)
        if line.mapping:
            item: dict[str, Any] = {"product_id": int(line.mapping.product_id), "quantity": line.quantity,
                                    "subtotal": total, "total": total}
            if line.mapping.variant_id:
                item["variation_id"] = int(line.mapping.variant_id)
            lines.append(item)
        else:
            # WooCommerce refuses a line item without a product reference
            # (woocommerce_rest_required_product_reference): an unmapped line travels as a fee line.
            title = line.title + (f" - {line.variant_title}" if line.variant_title else "")
            fees.append({"name": f"{title} × {line.quantity}", "total": total, "tax_status": "none",
                         "meta_data": [{"key": "SKU", "value": line.sku or ""},
                                       {"key": "quantity", "value": str(line.quantity)},
                                       {"key": "unit_price", "value": str(line.unit_price)}]})
    billing = _address(draft.billing_address, draft.contact.email)
    billing.setdefault("first_name", draft.contact.first_name)
    billing.setdefault("last_name", draft.contact.last_name)
    if draft.contact.phone:
        billing["phone"] = draft.contact.phone
    meta = [{"key": MARKER_KEY, "value": draft.marker},
            {"key": MERCHANT_ORDER_KEY, "value": draft.merchant_order_name},
            {"key": MERCHANT_ORDER_ID_KEY, "value": draft.merchant_order_id}]
    meta += [{"key": k, "value": v} for k, v in draft.custom_attributes]
    payload: dict[str, Any] = {
        "currency": draft.currency,
        "set_paid": draft.paid,
        "billing": {k: v for k, v in billing.items() if v},
        "shipping": _address(draft.shipping_address),
        "line_items": lines,
        "meta_data": meta,
        **({"fee_lines": fees} if fees else {}),
    }
    if draft.note:
        payload["customer_note"] = draft.note
    return payload


def update_payload(fields: dict[str, Any]) -> dict[str, Any]:
    """``PUT /orders/{id}`` body from the synced fields (``ordersync.lifecycle.synced_fields``)."""
    out: dict[str, Any] = {}
    if "note" in fields:
        out["customer_note"] = fields["note"] or ""
    if "shipping_address" in fields:
        out["shipping"] = _address(Address(**fields["shipping_address"]) if fields["shipping_address"] else None)
    billing: dict[str, Any] = {}
    if "billing_address" in fields and fields["billing_address"]:
        billing.update(_address(Address(**fields["billing_address"])))
    if "email" in fields:
        billing["email"] = fields["email"] or ""
    if "phone" in fields and fields["phone"]:
        billing["phone"] = fields["phone"]
    if billing:
        out["billing"] = billing
    if "custom_attributes" in fields:
        out["meta_data"] = [{"key": k, "value": v} for k, v in fields["custom_attributes"]]
    return out


def _wc_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


class WooVendor(OverHttp):
    """A vendor's WooCommerce store. Locations do not exist there: ``location_id`` is ignored."""

    platform = "woocommerce"

    def __init__(self, host: str, key: str, secret: str, label: str, *, timeout: float = 30.0,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.label = label
        self.http = JsonHttp(f"{host.rstrip('/')}/wp-json/wc/v3", label, auth=(key, secret), timeout=timeout,
                             policy=policy, sleep=sleep)

    def _list(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        _, _, payload = self.http.request("GET", path, params=params)
        if not isinstance(payload, list):
            raise TransientError(f"{self.label}: GET {path}: expected a JSON list, got {type(payload).__name__}")
        return payload

    def resolve_skus(self, skus: list[str]) -> dict[str, Mapping]:
        found: dict[str, Mapping] = {}
        unique = list(dict.fromkeys(s for s in skus if s))
        for start in range(0, len(unique), SKU_BATCH):
            batch = unique[start:start + SKU_BATCH]
            wanted = set(batch)
            page = 1
            while True:
                products = self._list("/products", {"sku": ",".join(batch), "per_page": PAGE_SIZE, "page": page})
                for product in products:
                    sku = product.get("sku")
                    if sku in wanted and sku not in found:
                        if product.get("type") == "variation":
                            found[sku] = Mapping(sku=sku, product_id=str(product["parent_id"]),
                                                 variant_id=str(product["id"]))
                        else:
                            found[sku] = Mapping(sku=sku, product_id=str(product["id"]))
                if len(products) < PAGE_SIZE:
                    break
                page += 1
        return found

    def find_order(self, marker: str, since: datetime | None = None) -> VendorOrderRef | None:
        """Orders created since the first attempt (minus a margin), matched by the marker in ``meta_data``."""
        start = (since or datetime.now(timezone.utc) - timedelta(days=2)) - timedelta(minutes=10)
        for page in range(1, LOOKUP_MAX_PAGES + 1):
            orders = self._list("/orders", {"after": _wc_time(start), "per_page": PAGE_SIZE, "page": page,
                                            "orderby": "date", "order": "asc", "status": "any"})
            for order in orders:
                for meta in order.get("meta_data") or ():
                    if meta.get("key") == MARKER_KEY and meta.get("value") == marker:
                        return VendorOrderRef(id=str(order["id"]), name=f"#{order.get('number') or order['id']}")
            if len(orders) < PAGE_SIZE:
                return None
        raise StoreError(f"{self.label}: too many orders since {_wc_time(start)} to look up {marker}")

    def create_order(self, draft: VendorOrderDraft) -> VendorOrderRef:
        _, _, order = self.http.request("POST", "/orders", json_body=build_order_payload(draft), idempotent=False)
        if not isinstance(order, dict) or "id" not in order:
            raise TransientError(f"{self.label}: POST /orders answered without an order id", maybe_committed=True)
        return VendorOrderRef(id=str(order["id"]), name=f"#{order.get('number') or order['id']}")

    def update_order(self, vendor_order_id: str, fields: dict[str, Any], merchant_order_name: str) -> None:
        self.http.request("PUT", f"/orders/{vendor_order_id}", json_body=update_payload(fields))

    def order_state(self, vendor_order_id: str) -> VendorOrderState:
        _, _, order = self.http.request("GET", f"/orders/{vendor_order_id}")
        status = str((order or {}).get("status") or "unknown")
        return VendorOrderState(cancelled=status == "cancelled", fulfilled=status == "completed", status=status)

    def cancel_order(self, vendor_order_id: str, reason: str, note: str) -> None:
        self.http.request("PUT", f"/orders/{vendor_order_id}", json_body={"status": "cancelled"})
