"""The merchant sandbox's discounts, taxes, shipping lines and risk assessments, served through the real
documents ordersync sends (paged and bulk) and read back by ordersync's parser; the vendor sandboxes keep
what orderCreate / POST /orders receive."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from ordersync.platforms.shopify import documents
from ordersync.platforms.shopify.bulk import Spool, inner_query
from ordersync.platforms.shopify.parse import is_shipping_line, merchant_order
from ordersync_sandbox.shopify import ShopifyStore

GRAPHQL = Path(documents.GRAPHQL_DIR)
D = Decimal


def doc(name: str) -> str:
    return (GRAPHQL / f"{name}.graphql").read_text()


def ok(store: ShopifyStore, query: str, variables: dict | None = None) -> dict:
    payload = store.graphql(query, variables or {})
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def merchant() -> tuple[ShopifyStore, dict]:
    store = ShopifyStore("merchant", "tok")
    order = store.add_order(
        lineItems=[
            {
                "title": "Hammer",
                "sku": "H",
                "vendor": "Acme",
                "quantity": 2,
                "price": "24.00",
                "taxLines": [{"title": "VAT", "rate": "0.2", "price": "7.17"}],
            },
            {"title": "Bolts", "sku": "B", "vendor": "Bolt", "quantity": 3, "price": "9.50"},
        ],
        discounts=[
            {"title": "Hammer deal", "automatic": True, "type": "percentage", "value": 10, "lines": ["H"]},
            {"code": "SAVE10", "type": "percentage", "value": 10},
            {"code": "FIVEOFF", "type": "fixed", "value": "5.00"},
        ],
        taxesIncluded=True,
        shippingLines=[
            {
                "title": "Standard",
                "code": "STD",
                "source": "shopify",
                "price": "6.00",
                "discount": "1.00",
                "taxLines": [{"title": "VAT", "rate": "0.2", "price": "0.83"}],
            },
            {"title": "Insurance", "code": "INS", "source": "shopify", "price": "1.00"},
        ],
        risk=[
            {"level": "MEDIUM", "message": "Billing address differs"},
            {"level": "HIGH", "message": "Card declined twice", "provider": "FraudFilter"},
        ],
    )
    return store, order


def test_discounts_are_allocated_to_lines_like_shopify():
    store, order = merchant()
    hammer, bolts = order["lineItems"]
    assert [D(a["allocatedAmountSet"]["shopMoney"]["amount"]) for a in hammer["discountAllocations"]] == [
        D("4.80"),
        D("4.32"),
        D("3.01"),
    ]
    assert [D(a["allocatedAmountSet"]["shopMoney"]["amount"]) for a in bolts["discountAllocations"]] == [
        D("2.85"),
        D("1.99"),
    ]
    assert hammer["discountAllocations"][0]["discountApplication"]["targetSelection"] == "ENTITLED"
    assert hammer["discountedUnitPriceAfterAllDiscountsSet"]["shopMoney"]["amount"] == "17.94"  # approximate
    assert order["discountCodes"] == ["SAVE10", "FIVEOFF"] and order["discountCode"] == "SAVE10"
    assert D(order["totalDiscountsSet"]["shopMoney"]["amount"]) == D("16.97") + D("1.00")  # + shipping
    assert D(order["subtotalPriceSet"]["shopMoney"]["amount"]) == D("59.53")
    assert D(order["totalTaxSet"]["shopMoney"]["amount"]) == D("8.00")
    assert D(order["totalPriceSet"]["shopMoney"]["amount"]) == D("59.53") + D("5.00") + D(
        "1.00"
    )  # tax included
    data = ok(
        store,
        "query($id: ID!) { order(id: $id) { discountApplications(first: 5) { nodes { "
        "__typename allocationMethod targetSelection ... on DiscountCodeApplication { code } "
        "... on AutomaticDiscountApplication { title } value { ... on PricingPercentageValue { percentage } "
        "... on MoneyV2 { amount } } } } } }",
        {"id": order["id"]},
    )
    apps = data["order"]["discountApplications"]["nodes"]
    assert [a.get("code") or a.get("title") for a in apps] == ["Hammer deal", "SAVE10", "FIVEOFF"]
    assert apps[2]["value"] == {"amount": "5.00"}


def test_merchant_orders_document_reads_discounts_taxes_shipping_and_risk():
    store, order = merchant()
    data = ok(
        store,
        doc("MerchantOrders"),
        {"first": documents.ORDERS_PAGE_SIZE, "lineItems": documents.LINE_ITEMS_PAGE_SIZE, "query": None},
    )
    [node] = data["orders"]["nodes"]
    parsed = merchant_order(node, node["lineItems"]["nodes"])
    hammer, bolts = parsed.line_items
    assert (hammer.paid_total, bolts.paid_total) == (D("35.87"), D("23.66"))
    assert [(t.title, t.rate, t.price) for t in hammer.tax_lines] == [("VAT", D("0.2"), D("7.17"))]
    assert parsed.taxes_included is True and parsed.discount_codes == ("SAVE10", "FIVEOFF")
    assert [(s.title, s.code, s.source, s.price) for s in parsed.shipping_lines] == [
        ("Standard", "STD", "shopify", D("5.00")),
        ("Insurance", "INS", "shopify", D("1.00")),
    ]
    assert parsed.shipping_lines[0].tax_lines[0].price == D("0.83")
    assert parsed.risk_level == "HIGH"
    assert parsed.risk_message == (
        "Shopify: MEDIUM (Billing address differs); FraudFilter: HIGH (Card declined twice); recommendation CANCEL"
    )
    # the risk changes with update_order; no assessment: no level
    store.update_order(order["id"], risk={"level": "LOW", "message": "ok"})
    [node] = ok(store, doc("MerchantOrders"), {"first": 1, "lineItems": 5, "query": None})["orders"]["nodes"]
    assert merchant_order(node).risk_level == "LOW"
    store.update_order(order["id"], risk=None)
    [node] = ok(store, doc("MerchantOrders"), {"first": 1, "lineItems": 5, "query": None})["orders"]["nodes"]
    assert (merchant_order(node).risk_level, merchant_order(node).risk_message) == (None, None)


def test_the_bulk_document_reads_the_same_order():
    store, _ = merchant()
    store.bulk_objects_per_second = 10_000
    run = ok(store, doc("MerchantBulkRun"), {"query": inner_query("")})["bulkOperationRunQuery"]
    assert run["userErrors"] == [], run
    op_id = run["bulkOperation"]["id"]
    for _ in range(100):
        if (store.bulk_operation(op_id) or {}).get("status") == "COMPLETED":
            break
        time.sleep(0.05)
    spool = Spool().extend(store.bulk_output(op_id).splitlines())
    [(node, children)] = list(spool.orders())
    bulk = merchant_order(
        node, [c for c in children if not is_shipping_line(c)], [c for c in children if is_shipping_line(c)]
    )
    paged_node = ok(store, doc("MerchantOrders"), {"first": 1, "lineItems": 5, "query": None})["orders"][
        "nodes"
    ][0]
    assert bulk == merchant_order(paged_node)
    assert len(bulk.shipping_lines) == 2 and bulk.risk_level == "HIGH"
    spool.close()


def test_vendor_order_create_keeps_shipping_and_tax_lines():
    vendor = ShopifyStore("vendor", "tok")
    tax = [
        {"title": "VAT", "rate": "0.2", "priceSet": {"shopMoney": {"amount": "4.00", "currencyCode": "USD"}}}
    ]
    data = ok(
        vendor,
        doc("VendorOrderCreate"),
        {
            "order": {
                "currency": "USD",
                "taxesIncluded": True,
                "lineItems": [
                    {
                        "title": "Hammer",
                        "quantity": 1,
                        "priceSet": {"shopMoney": {"amount": "24.00", "currencyCode": "USD"}},
                        "taxLines": tax,
                    }
                ],
                "shippingLines": [
                    {
                        "title": "Standard",
                        "code": "STD",
                        "source": "shopify",
                        "priceSet": {"shopMoney": {"amount": "3.01", "currencyCode": "USD"}},
                        "taxLines": tax,
                    }
                ],
            }
        },
    )
    assert data["orderCreate"]["userErrors"] == []
    [order] = vendor.orders
    assert order["taxesIncluded"] is True
    assert order["lineItems"][0]["taxLines"][0]["title"] == "VAT"
    assert order["lineItems"][0]["taxLines"][0]["rate"] == 0.2
    [shipping] = order["shippingLines"]
    assert (shipping["title"], shipping["code"], shipping["source"]) == ("Standard", "STD", "shopify")
    assert shipping["discountedPriceSet"]["shopMoney"]["amount"] == "3.01"
    assert shipping["taxLines"][0]["priceSet"]["shopMoney"]["amount"] == "4.00"
    assert order["totalTaxSet"]["shopMoney"]["amount"] == "8.00"
