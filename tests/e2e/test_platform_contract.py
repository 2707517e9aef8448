"""The contract every registered platform keeps, run against its sandbox store over real HTTP.

For each name in ``ordersync.platforms.registry``: resolve SKUs, create an order once and find it again by its
marker, forward an order-level edit, read its state, cancel it, and list its shipments with their tracking.
A new platform joins by its registry line and a :class:`SandboxVendor` here; a platform without one fails
``test_every_registered_platform_has_a_sandbox_store``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ordersync.models import Address, Contact, VendorLine, VendorOrderDraft
from ordersync.platforms import registry
from ordersync.platforms.base import StoreConnection
from ordersync.platforms.http import RetryPolicy

pytestmark = pytest.mark.e2e

SKU = "CONTRACT-SKU-1"


class SandboxVendor:
    """What the contract needs of a platform's sandbox store, beyond the platform's own API."""

    def __init__(
        self, store: Any, note_of: Callable[[Any, str], str | None], ship: Callable[[Any, str], None]
    ):
        self.store = store
        self._note_of = note_of
        self._ship = ship

    def note(self, order_id: str) -> str | None:
        return self._note_of(self.store, order_id)

    def ship(self, order_id: str) -> None:
        """The vendor ships the whole order with tracking number 1ZCONTRACT (carrier UPS)."""
        self._ship(self.store, order_id)


def _shopify(sandbox) -> SandboxVendor:
    store = sandbox.add_shopify("contract-shopify", token="shpat_contract_SECRET")
    store.add_product("Contract item", sku=SKU, price="12.00")
    return SandboxVendor(
        store,
        lambda s, oid: s.get_order(oid)["note"],
        lambda s, oid: s.fulfill_order(oid, company="UPS", number="1ZCONTRACT"),
    )


def _woocommerce(sandbox) -> SandboxVendor:
    store = sandbox.add_woo("contract-woo", key="ck_contract", secret="cs_contract_SECRET")
    store.add_product("Contract item", SKU, price="12.00")
    return SandboxVendor(
        store,
        lambda s, oid: s.get_order(oid)["customer_note"],
        lambda s, oid: s.add_tracking(oid, "UPS", "1ZCONTRACT"),
    )


SANDBOX_VENDORS: dict[str, Callable[[Any], SandboxVendor]] = {
    "shopify": _shopify,
    "woocommerce": _woocommerce,
}


def test_every_registered_platform_has_a_sandbox_store():
    assert set(SANDBOX_VENDORS) == set(registry.names())


def test_every_registered_platform_declares_itself_and_its_capabilities():
    for name in registry.names():
        platform = registry.get(name)
        assert platform.name == name and platform.label
        assert platform.concurrency() >= 1
        assert set(platform.update_fields) <= {
            "email",
            "phone",
            "note",
            "tags",
            "shipping_address",
            "billing_address",
            "custom_attributes",
        }
        assert "note" in platform.update_fields
    with pytest.raises(Exception, match="unknown platform 'magento'"):
        registry.get("magento")


@pytest.fixture(params=registry.names())
def vendor(request, sandbox):
    fake = SANDBOX_VENDORS[request.param](sandbox)
    _, raw = sandbox.connection_env(fake.store, "contract")
    conn = json.loads(raw)
    connection = StoreConnection(
        conn_id="contract",
        host=conn["host"],
        login=conn.get("login"),
        password=conn.get("password"),
        extra=conn.get("extra") or {},
    )
    policy = RetryPolicy(max_attempts=2, base_seconds=0.01, cap_seconds=0.1, lookup_delay_seconds=0.0)
    store = registry.open_vendor(request.param, connection, "Contract Vendor", policy)
    yield request.param, store, fake
    store.close()


def _draft(mapping, marker: str = "ordersync-9001") -> VendorOrderDraft:
    address = Address(
        first_name="Jane",
        last_name="Buyer",
        address1="1 Main St",
        city="Springfield",
        province_code="IL",
        zip="62701",
        country_code="US",
    )
    return VendorOrderDraft(
        merchant_order_id="gid://shopify/Order/9001",
        merchant_order_name="#9001",
        merchant_legacy_id="9001",
        vendor="Contract Vendor",
        marker=marker,
        currency="USD",
        paid=True,
        financial_status="PAID",
        lines=(
            VendorLine(
                merchant_line_id="gid://shopify/LineItem/1",
                title="Contract item",
                sku=SKU,
                quantity=2,
                unit_price=Decimal("12.00"),
                mapping=mapping,
            ),
        ),
        contact=Contact(first_name="Jane", last_name="Buyer", email="jane@example.net"),
        billing_address=address,
        shipping_address=address,
        email="jane@example.net",
        phone=None,
        note="first note",
        tags=("ordersync",),
    )


def test_the_vendor_store_contract(vendor):
    name, store, fake = vendor
    assert store.platform == name
    mappings = store.resolve_skus([SKU, "NO-SUCH-SKU"])
    assert set(mappings) == {SKU}

    ref = store.create_order(_draft(mappings[SKU]))
    assert ref.id and ref.name
    assert store.find_order("ordersync-9001") == ref  # found again by its marker
    assert store.find_order("ordersync-9002") is None

    store.update_order(ref.id, {"note": "second note"}, "#9001")
    assert fake.note(ref.id) == "second note"

    fake.ship(ref.id)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    [shipped] = [o for o in store.shipped_orders(order_ids=[ref.id], only={ref.id}) if o.id == ref.id]
    assert [s.tracking.numbers for s in shipped.shipments] == [("1ZCONTRACT",)]
    assert shipped.shipments[0].tracking.company == "UPS"
    assert registry.get(name).shipments_have_lines == bool(shipped.shipments[0].lines)
    assert any(o.id == ref.id for o in store.shipped_orders(since=since, only={ref.id}))

    assert not store.order_state(ref.id).cancelled


def test_the_vendor_store_cancels(vendor):
    _, store, _ = vendor
    ref = store.create_order(_draft(store.resolve_skus([SKU])[SKU], marker="ordersync-9003"))
    assert not store.order_state(ref.id).cancelled
    store.cancel_order(ref.id, "CUSTOMER", "Cancelled at the marketplace: #9001")
    assert store.order_state(ref.id).cancelled
