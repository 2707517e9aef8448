"""Which vendor a merchant refund touches and what each vendor order records (pure functions), and the two
platforms' refund payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from ordersync.models import LineItem, MerchantOrder, Refund, RefundLine, ShippingLine
from ordersync.orders import refunds as parts
from ordersync.orders.split import split_by_vendor, unrefunded
from ordersync.platforms.base import PermanentError
from ordersync.platforms.shopify.refunds import has_refunds, refund_line_inputs
from ordersync.platforms.woocommerce.refunds import refund_body

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _line(id_: str, vendor: str, sku: str, qty: int, price: str, ordered: int | None = None) -> LineItem:
    return LineItem(
        id=id_,
        title=f"{sku} title",
        sku=sku,
        vendor=vendor,
        quantity=qty,
        ordered_quantity=ordered or qty,
        unit_price=D(price),
        currency="USD",
    )


def _order(lines, refunds=(), shipping="10.00") -> MerchantOrder:
    return MerchantOrder(
        id="gid://shopify/Order/1",
        legacy_id="1",
        name="#1001",
        created_at=NOW,
        updated_at=NOW,
        currency="USD",
        line_items=tuple(lines),
        shipping_lines=(ShippingLine(title="Standard", price=D(shipping)),),
        refunds=tuple(refunds),
    )


def _refund(n: int, lines=(), shipping="0") -> Refund:
    return Refund(
        id=f"gid://shopify/Refund/{n}",
        created_at=NOW,
        lines=tuple(
            RefundLine(line_item_id=i, quantity=q, restock_type=r, subtotal=D(s)) for i, q, r, s in lines
        ),
        shipping=D(shipping),
    )


# Acme: 2 hammers at 24.00 (48.00); Bolt: 3 bolt packs at 9.50 (28.50). One hammer refunded and restocked.
REFUND = _refund(7, [("h", 1, "CANCEL", "24.00")])
ORDER = _order(
    [_line("h", "Acme", "HAM", 1, "24.00", ordered=2), _line("b", "Bolt", "BOLT", 3, "9.50")], [REFUND]
)


def test_a_refund_touches_only_the_vendor_whose_lines_it_refunds():
    assert parts.touches(ORDER, REFUND, "Acme", "proportional")
    assert not parts.touches(ORDER, REFUND, "Bolt", "proportional")
    part = parts.vendor_refund(ORDER, REFUND, "Acme", "proportional", "key-1")
    assert [(line.sku, line.quantity, line.restock, line.amount) for line in part.lines] == [
        ("HAM", 1, True, D("24.00"))
    ]
    assert (part.shipping, part.amount, part.key, part.marker) == (
        D("0"),
        D("24.00"),
        "key-1",
        "ordersync-refund-7",
    )
    assert parts.describe(part) == "1 × HAM (restocked); 24.00 USD"
    assert "#1001" in part.note and part.marker in part.note


def test_the_pushed_share_is_compared_as_if_nothing_was_refunded():
    # split_by_vendor sees the current quantity; the fingerprint of what was pushed sees the quantity ordered
    assert [line.quantity for line in split_by_vendor(ORDER)["Acme"]] == [1]
    assert [line.quantity for line in split_by_vendor(unrefunded(ORDER))["Acme"]] == [2]
    assert unrefunded(_order([_line("b", "Bolt", "BOLT", 3, "9.50")])).line_items[0].quantity == 3


@pytest.mark.parametrize(
    ("mode", "acme", "bolt"),
    [("proportional", "6.27", "3.73"), ("full", "10.00", "10.00"), ("method_only", "0", "0")],
)
def test_a_shipping_refund_is_split_as_vendor_shipping_split_the_shipping(mode, acme, bolt):
    order = _order([_line("h", "Acme", "HAM", 2, "24.00"), _line("b", "Bolt", "BOLT", 3, "9.50")])
    refund = _refund(8, shipping="10.00")
    assert parts.shipping_part(order, refund, "Acme", mode) == D(acme)
    assert parts.shipping_part(order, refund, "Bolt", mode) == D(bolt)
    assert parts.touches(order, refund, "Acme", mode) is (mode != "method_only")


def test_the_proportional_split_uses_the_goods_before_any_refund():
    # after one hammer is refunded the weights stay 48.00 : 28.50, so later refunds split the same way
    later = ORDER.model_copy(update={"refunds": (REFUND, _refund(9, shipping="10.00"))})
    assert parts.shipping_part(later, later.refunds[1], "Acme", "proportional") == D("6.27")


def test_fully_refunded_needs_every_unit_gone_by_refunds():
    whole = _order(
        [_line("h", "Acme", "HAM", 0, "24.00", ordered=2)], [_refund(1, [("h", 2, "CANCEL", "48.00")])]
    )
    assert parts.fully_refunded(whole, "Acme")
    assert not parts.fully_refunded(ORDER, "Acme")
    removed = _order([_line("h", "Acme", "HAM", 0, "24.00", ordered=2)])  # removed by an edit, not refunded
    assert not parts.fully_refunded(removed, "Acme")


def test_shopify_refund_lines_cancel_unfulfilled_units_and_return_shipped_ones():
    part = parts.vendor_refund(
        _order(
            [_line("h", "Acme", "HAM", 0, "24.00", ordered=3)], [_refund(1, [("h", 3, "RETURN", "72.00")])]
        ),
        _refund(1, [("h", 3, "RETURN", "72.00")]),
        "Acme",
        "proportional",
        "k",
    )
    # the vendor order holds the hammers as two lines a cent apart (a split price); one unit was shipped
    lines = [
        {"id": "v1", "sku": "HAM", "title": "Hammer", "refundableQuantity": 2, "unfulfilledQuantity": 1},
        {"id": "v2", "sku": "HAM", "title": "Hammer", "refundableQuantity": 1, "unfulfilledQuantity": 1},
    ]
    items, shipped = refund_line_inputs(part, lines, "vendor Acme")
    assert items == [
        {"lineItemId": "v1", "quantity": 1, "restockType": "CANCEL"},
        {"lineItemId": "v1", "quantity": 1, "restockType": "RETURN"},
        {"lineItemId": "v2", "quantity": 1, "restockType": "CANCEL"},
    ]
    assert shipped == 1
    with pytest.raises(PermanentError, match="has 2 of HAM left to refund, the merchant refunded 3"):
        refund_line_inputs(part, lines[:1], "vendor Acme")


def test_a_refund_is_read_only_for_orders_that_may_have_one():
    assert has_refunds({"displayFinancialStatus": "PARTIALLY_REFUNDED"}, [])
    assert has_refunds({"displayFinancialStatus": "PAID"}, [{"quantity": 2, "currentQuantity": 1}])
    assert not has_refunds({"displayFinancialStatus": "PAID"}, [{"quantity": 2, "currentQuantity": 2}])


def test_woocommerce_refund_body_records_without_paying_and_finds_fee_and_shipping_lines():
    order = _order(
        [
            _line("h", "Bolt", "BOLT", 1, "9.50", ordered=3),
            _line("x", "Bolt", "CUSTOM-1", 0, "5.00", ordered=1),
        ],
        [_refund(4, [("h", 2, "NO_RESTOCK", "19.00"), ("x", 1, "NO_RESTOCK", "5.00")], shipping="4.00")],
    )
    part = parts.vendor_refund(order, order.refunds[0], "Bolt", "full", "k")
    wc_order = {
        "id": 5001,
        "status": "processing",
        "line_items": [{"id": 11, "sku": "BOLT", "name": "Bolts", "quantity": 3}],
        "fee_lines": [
            {"id": 12, "name": "CUSTOM-1 title × 1", "meta_data": [{"key": "SKU", "value": "CUSTOM-1"}]}
        ],
        "shipping_lines": [{"id": 13, "total": "10.00"}],
    }
    body, shipped = refund_body(part, wc_order, "vendor Bolt")
    assert body == {
        "amount": "28.00",
        "reason": part.note,
        "line_items": [
            {"id": 11, "quantity": 2, "refund_total": "19.00"},
            {"id": 12, "refund_total": "5.00"},
            {"id": 13, "refund_total": "4.00"},
        ],
        "api_refund": False,
        "api_restock": False,
    }
    assert shipped == 0
    assert refund_body(part, {**wc_order, "status": "completed"}, "vendor Bolt")[1] == 3
    with pytest.raises(PermanentError, match="no line for BOLT"):
        refund_body(part, {**wc_order, "line_items": []}, "vendor Bolt")


def test_a_shipping_refund_over_several_lines_gives_each_vendor_back_what_each_line_charged_it():
    from ordersync.orders.split import vendor_shipping

    lines = [_line(c, c, c, 1, "10.00") for c in ("A", "B", "C")]  # three vendors, equal goods
    order = _order(lines).model_copy(
        update={
            "shipping_lines": (
                ShippingLine(id="s1", title="Standard", price=D("4.99")),
                ShippingLine(id="s2", title="Insurance", price=D("4.99")),
            )
        }
    )
    refund = _refund(5, shipping="9.98").model_copy(
        update={"shipping_lines": (("s1", D("4.99")), ("s2", D("4.99")))}
    )
    for vendor in ("A", "B", "C"):
        charged = sum((s.price for s in vendor_shipping(order, vendor, "proportional")), D(0))
        assert parts.shipping_part(order, refund, vendor, "proportional") == charged
    assert sum(parts.shipping_part(order, refund, v, "proportional") for v in "ABC") == D("9.98")


def test_woocommerce_refund_takes_the_vendors_own_taxes_pro_rata():
    order = _order(
        [_line("h", "Bolt", "BOLT", 1, "10.00", ordered=2)],
        [_refund(6, [("h", 1, "NO_RESTOCK", "10.00")], shipping="5.00")],
    )
    part = parts.vendor_refund(order, order.refunds[0], "Bolt", "full", "k")
    wc_order = {
        "id": 7,
        "status": "processing",
        "line_items": [{"id": 21, "sku": "BOLT", "quantity": 2, "taxes": [{"id": 1, "total": "3.00"}]}],
        "shipping_lines": [{"id": 22, "total": "10.00", "taxes": [{"id": 1, "total": "1.00"}]}],
    }
    body, _ = refund_body(part, wc_order, "vendor Bolt")
    assert body["line_items"] == [
        {"id": 21, "quantity": 1, "refund_total": "10.00", "refund_tax": [{"id": 1, "refund_total": "1.50"}]},
        {"id": 22, "refund_total": "5.00", "refund_tax": [{"id": 1, "refund_total": "0.50"}]},
    ]
    assert body["amount"] == "17.00"


def test_the_idempotency_key_is_unique_across_stores_stable_while_unknown_and_new_after_a_refusal(tmp_path):
    from ordersync.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    refunds = ledger.refunds
    first = refunds.begin(
        "gid://shopify/Order/1", "Acme", "gid://shopify/Refund/7", "#1001", "1 × HAM", "run-1"
    )
    key = first.key_for("gid://shopify/Order/900")
    assert key.startswith("ordersync-refund-7-900-") and key != first.key_for("gid://shopify/Order/901")
    refunds.finish(first, "in_flight", last_error="timed out")  # the answer was lost: the same key again
    again = refunds.begin(
        "gid://shopify/Order/1", "Acme", "gid://shopify/Refund/7", "#1001", "1 × HAM", "run-2"
    )
    assert again.key_for("gid://shopify/Order/900") == key and again.attempts == 2
    refunds.finish(again, "failed", last_error="refused")  # refused: a retry may send other input
    third = refunds.begin(
        "gid://shopify/Order/1", "Acme", "gid://shopify/Refund/7", "#1001", "1 × HAM", "run-3"
    )
    assert third.key_for("gid://shopify/Order/900") != key and third.attempts == 3


def test_a_marker_is_matched_whole():
    from ordersync.platforms.woocommerce.refunds import WooRefunds

    class Store(WooRefunds):
        label = "vendor Bolt"

        def __init__(self, order):
            self.order, self.posted = order, []
            self.http = self

        def request(self, method, path, json_body=None, idempotent=None):
            if method == "GET":
                return 200, {}, self.order
            self.posted.append(json_body)
            return 201, {}, {"id": 99}

    part = parts.vendor_refund(
        ORDER, REFUND.model_copy(update={"id": "gid://shopify/Refund/1"}), "Acme", "full", "k"
    )
    # an earlier refund of merchant refund 12 must not pass for refund 1
    store = Store(
        {
            "id": 5,
            "status": "processing",
            "refunds": [{"id": 3, "reason": "Refunded at the marketplace: #1001 (ordersync-refund-12)"}],
            "line_items": [{"id": 11, "sku": "HAM", "quantity": 2}],
        }
    )
    assert store.record_refund("5", part).found is False and len(store.posted) == 1
    store.order["refunds"].append({"id": 4, "reason": part.note})
    assert store.record_refund("5", part).id == "4"
