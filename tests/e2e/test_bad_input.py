"""Bad input from the merchant, garbage from the vendor stores, and what must never leak into logs.

Each test packs many cases into few Airflow runs (each run costs about 1.5 s).
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.e2e.conftest import ACME, BOLT, BUYER, MERCHANT_CONTACT, alert_settings

pytestmark = pytest.mark.e2e

SECRETS = ("shpat_test_merchant_SECRET", "shpat_test_acme_SECRET", "cs_test_bolt_SECRET", "smtp-SECRET-pw")
UNICODE_NOTE = "Bitte klingeln 🔔 — 東京都 ✓ «façade» ñ Ω \u200d👩‍🔧"
UNICODE_FIRST, UNICODE_LAST = "Zoë 🚀", "Ñandú-李"


def _decision_rows(world, order_name: str, vendor: str | None = None) -> list[dict]:
    rows = world.ledger().dump()["ordersync_decisions"]
    return [
        r
        for r in rows
        if r["merchant_order_name"] == order_name and (vendor is None or r["vendor"] == vendor)
    ]


def test_bad_merchant_orders_each_get_a_reason_and_the_batch_goes_on(world):
    normal = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    no_customer = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], customer=None)
    no_shipping = world.order([(BOLT, "BOLT-M6-100", 2, "9.50")], shippingAddress=None)
    no_vendor = world.order([(None, "ACME-HAMMER", 1, "24.00"), (ACME, "ACME-WRENCH-S", 1, "18.00")])
    no_sku = world.order([(ACME, None, 1, "24.00"), (ACME, "ACME-HAMMER", 1, "24.00")])
    zero_qty = world.order([(BOLT, "BOLT-M6-100", 0, "9.50")])
    address = {
        "firstName": UNICODE_FIRST,
        "lastName": UNICODE_LAST,
        "address1": "Straße 1 🏠",
        "city": "Zürich",
        "zip": "8001",
        "countryCodeV2": "CH",
        "phone": BUYER["address_phone"],
    }
    unicode_order = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")],
        note=UNICODE_NOTE,
        shippingAddress=address,
        billingAddress=address,
        customer={
            "firstName": UNICODE_FIRST,
            "lastName": UNICODE_LAST,
            "defaultEmailAddress": {"emailAddress": BUYER["email"]},
        },
    )
    long_note = ("10 kB note ✓ " + "0123456789abcdef" * 640)[:10240]
    big_note = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")], note=long_note
    )
    many_lines = world.order(
        [(ACME, "ACME-HAMMER" if i % 2 else "ACME-WRENCH-L", 1, "1.00") for i in range(300)]
    )
    # An unknown currency: XXX is the only one a Shopify merchant order can carry (CurrencyCode enum, "unrecognized
    # currency"). ordersync does not second-guess money: it is passed through as is and the vendor store decides.
    odd_currency = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")], currencyCode="XXX"
    )

    result = world.run()
    log = "\n".join(result.lines)
    assert result.task_states["fetch_orders"] == ["success"], log
    assert result.task_states["decide"] == ["success"], log
    assert result.task_states["summary"] == ["success"], log

    assert result.outcome(normal["name"], ACME) == "pushed"
    assert result.outcome(normal["name"], BOLT) == "pushed"
    assert result.outcome(no_customer["name"], ACME) == "pushed"
    assert result.outcome(no_shipping["name"], BOLT) == "pushed"
    # A line without a vendor is skipped with a reason; the order's other lines go on.
    [line] = result.decisions(no_vendor["name"], "(none)")
    assert "skipped" in line and "line item has no vendor" in line
    assert result.outcome(no_vendor["name"], ACME) == "pushed"
    # A line without a SKU cannot be mapped: held, naming the missing SKU.
    [line] = result.decisions(no_sku["name"], ACME)
    assert result.outcome(no_sku["name"], ACME) == "held"
    assert "SKU missing" in line and "push_unmapped_products=false" in line
    [row] = _decision_rows(world, no_sku["name"], ACME)
    assert row["outcome"] == "held" and "SKU missing" in row["reason"]
    [row] = _decision_rows(world, no_vendor["name"], "")
    assert row["outcome"] == "skipped" and "line item has no vendor" in row["reason"]
    # Nothing left to push once the removed (quantity 0) line is left out.
    [line] = result.decisions(zero_qty["name"])
    assert "skipped" in line and "no line items left to push" in line
    assert result.outcome(unicode_order["name"], ACME) == "pushed"
    assert result.outcome(unicode_order["name"], BOLT) == "pushed"
    assert result.outcome(big_note["name"], BOLT) == "pushed"
    assert result.outcome(big_note["name"], ACME) == "pushed"
    assert result.outcome(many_lines["name"], ACME) == "pushed"
    assert result.outcome(odd_currency["name"], ACME) == "pushed"
    assert result.outcome(odd_currency["name"], BOLT) == "pushed"

    # No order is lost: every order has a decision line in the log and a row in the ledger.
    for order in (
        normal,
        no_customer,
        no_shipping,
        no_vendor,
        no_sku,
        zero_qty,
        unicode_order,
        big_note,
        many_lines,
        odd_currency,
    ):
        assert result.decisions(order["name"]), f"no decision for {order['name']}\n{log}"
        assert _decision_rows(world, order["name"]), order["name"]
        for row in _decision_rows(world, order["name"]):
            assert row["reason"].strip()

    # Unicode and emoji arrive intact at both platforms.
    acme_by_tag = {
        next(t for t in o["tags"] if t.startswith("merchant-order-")): o for o in world.acme_orders()
    }
    bolt_by_name = {
        next(m["value"] for m in o["meta_data"] if m["key"] == "_ordersync_merchant_order"): o
        for o in world.bolt_orders()
    }
    acme_uni = acme_by_tag[f"merchant-order-{unicode_order['name'].lstrip('#')}"]
    assert acme_uni["note"] == UNICODE_NOTE
    assert acme_uni["shippingAddress"]["firstName"] == UNICODE_FIRST
    assert acme_uni["shippingAddress"]["lastName"] == UNICODE_LAST
    assert acme_uni["shippingAddress"]["address1"] == "Straße 1 🏠"
    bolt_uni = bolt_by_name[unicode_order["name"]]
    assert bolt_uni["customer_note"] == UNICODE_NOTE
    assert bolt_uni["shipping"]["first_name"] == UNICODE_FIRST
    assert bolt_uni["shipping"]["last_name"] == UNICODE_LAST
    assert bolt_uni["billing"]["first_name"] == UNICODE_FIRST
    assert bolt_by_name[big_note["name"]]["customer_note"] == long_note
    assert acme_by_tag[f"merchant-order-{big_note['name'].lstrip('#')}"]["note"] == long_note
    assert bolt_by_name[odd_currency["name"]]["currency"] == "XXX"
    assert acme_by_tag[f"merchant-order-{odd_currency['name'].lstrip('#')}"]["currencyCode"] == "XXX"
    assert bolt_by_name[no_shipping["name"]]["shipping"] in ({}, [], None) or not bolt_by_name[
        no_shipping["name"]
    ]["shipping"].get("address_1")
    # 300 line items: the merchant query pages them 25 at a time; every one reaches the vendor.
    big = acme_by_tag[f"merchant-order-{many_lines['name'].lstrip('#')}"]
    assert len(big["lineItems"]) == 300
    assert sum(li["quantity"] for li in big["lineItems"]) == 300
    assert "300 line(s), 300 item(s)" in result.decisions(many_lines["name"], ACME)[0]
    assert any(
        r.get("body") and "MerchantOrderLineItems" in json.dumps(r["body"]) for r in world.merchant.requests
    )

    # push_unmapped_products on: the SKU-less line goes as a custom line on the next run, nothing else changes.
    world.settings(push_unmapped_products=True)
    acme_before, bolt_before = len(world.acme_orders()), len(world.bolt_orders())
    again = world.run()
    assert again.outcome(no_sku["name"], ACME) == "pushed", again.lines
    assert len(world.acme_orders()) == acme_before + 1 and len(world.bolt_orders()) == bolt_before
    pushed = world.acme_orders()[-1]
    titles = sorted(li.get("title") or "" for li in pushed["lineItems"])
    assert "Item title" in titles, pushed["lineItems"]


def _vendor_orders_by_merchant(world) -> dict[tuple[str, str], int]:
    """How many vendor orders each (merchant order name, vendor) has."""
    counts: dict[tuple[str, str], int] = {}
    for order in world.acme_orders():
        name = next(a["value"] for a in order["customAttributes"] if a["key"] == "ordersync_merchant_order")
        counts[(name, ACME)] = counts.get((name, ACME), 0) + 1
    for order in world.bolt_orders():
        name = next(m["value"] for m in order["meta_data"] if m["key"] == "_ordersync_merchant_order")
        counts[(name, BOLT)] = counts.get((name, BOLT), 0) + 1
    return counts


def _failed_only_at_push(result) -> None:
    """The run failed the way a run with failed orders fails: at the push tasks (and summary, which names them)."""
    assert result.state == "failed"
    for task in ("validate_settings", "fetch_orders", "decide"):
        assert result.task_states[task] == ["success"], (task, result.task_states)
    assert "failed" in result.task_states["push_vendor_orders"]
    assert any(line.startswith("run ") and "FAILED: " in line for line in result.lines), result.lines


def test_vendor_stores_answering_garbage(world):
    """HTML error pages, truncated JSON and 200-with-an-error-body, on creates and on SKU lookups."""
    first = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])

    # Run 1: the catalogs answer garbage: nothing can be mapped, every share fails naming the store.
    world.acme.add_fault("productVariants", "html", times=-1)
    world.bolt.add_fault("GET /products", "error_body_200", times=-1)
    result = world.run()
    _failed_only_at_push(result)
    [acme_line] = result.decisions(first["name"], ACME)
    [bolt_line] = result.decisions(first["name"], BOLT)
    assert "failed — cannot read the vendor catalog to map SKUs: vendor Acme Tools (shopify" in acme_line
    assert "HTTP 502: the store answered with an HTML page" in acme_line
    assert "failed — cannot read the vendor catalog to map SKUs: vendor Bolt Supply (woocommerce" in bolt_line
    assert "GET /products" in bolt_line and "internal_error: Internal error" in bolt_line
    assert world.acme_orders() == [] and world.bolt_orders() == []

    # Run 2: other garbage from the catalogs: 200 with an error body (Shopify), truncated JSON (WooCommerce).
    world.acme.clear_faults()
    world.bolt.clear_faults()
    world.acme.add_fault("productVariants", "error_body_200", times=-1)
    world.bolt.add_fault("GET /products", "truncated", times=-1)
    result = world.run()
    _failed_only_at_push(result)
    [acme_line] = result.decisions(first["name"], ACME)
    [bolt_line] = result.decisions(first["name"], BOLT)
    assert (
        "vendor Acme Tools (shopify, ordersync_vendor_acme): VendorVariantsBySku: Internal error" in acme_line
    )
    assert (
        "vendor Bolt Supply (woocommerce, ordersync_vendor_bolt): GET /products: HTTP 200: the store "
        "answered with a body that is not valid JSON" in bolt_line
    )
    assert world.acme_orders() == [] and world.bolt_orders() == []

    # Run 3: healthy catalogs; each create answers garbage. Per vendor, one order's create is committed but its
    # answer truncated (found by its marker), the two others get 3 garbage answers each (one per create cycle).
    world.acme.clear_faults()
    world.bolt.clear_faults()
    world.acme.add_fault("orderCreate", "truncated", times=1)
    world.acme.add_fault("orderCreate", "error_body_200", times=3)
    world.acme.add_fault("orderCreate", "html", times=-1)
    world.bolt.add_fault("POST /orders", "truncated", times=1)
    world.bolt.add_fault("POST /orders", "error_body_200", times=3)
    world.bolt.add_fault("POST /orders", "html", times=-1)
    second = world.order([(ACME, "ACME-HAMMER", 2, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")])
    third = world.order([(ACME, "ACME-WRENCH-S", 1, "18.00"), (BOLT, "BOLT-DRILL-18V", 1, "129.00")])
    result = world.run()
    _failed_only_at_push(result)
    for vendor, label, body_error in (
        (ACME, "vendor Acme Tools (shopify, ordersync_vendor_acme)", "VendorOrderCreate: Internal error"),
        (
            BOLT,
            "vendor Bolt Supply (woocommerce, ordersync_vendor_bolt)",
            "POST /orders answered without an order id; the store answered with an "
            "error: internal_error: Internal error",
        ),
    ):
        lines = [line for o in (first, second, third) for line in result.decisions(o["name"], vendor)]
        assert len(lines) == 3, lines
        pushed = [line for line in lines if ": pushed — " in line]
        failed = [line for line in lines if ": failed — " in line]
        assert len(pushed) == 1 and "found (the interrupted create had succeeded)" in pushed[0], lines
        assert len(failed) == 2 and all(label in line for line in failed), lines
        assert all("no vendor order found by marker after 3 attempts" in line for line in failed), failed
        assert sum(body_error in line for line in failed) == 1, failed
        assert sum("the store answered with an HTML page" in line for line in failed) == 1, failed
    counts = _vendor_orders_by_merchant(world)
    assert len(counts) == 2 and all(n == 1 for n in counts.values()), counts

    # Run 3: healthy stores: everything that failed is pushed, exactly one vendor order per (order, vendor).
    world.acme.clear_faults()
    world.bolt.clear_faults()
    result = world.run()
    assert result.state == "success", result.lines
    counts = _vendor_orders_by_merchant(world)
    assert counts == {(o["name"], v): 1 for o in (first, second, third) for v in (ACME, BOLT)}, counts


class _Everything(logging.Handler):
    """Every record any logger writes (Airflow's task logs included), formatted with its exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted still counts
            self.texts.append(f"{record.msg!r} {record.args!r} ({exc})")


def _xcom_values(run_ids: list[str]) -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == "order_sync", XComModel.run_id.in_(run_ids))
            .all()
        )
        return [json.dumps(r.value, default=str) for r in rows]


def _run_ids(result) -> list[str]:
    return [
        line.split(" ", 2)[1].rstrip(":").split("/", 1)[1]
        for line in result.lines
        if line.startswith("run order_sync/")
    ]


def test_no_secret_or_buyer_contact_leaks(world, capfd, receiver, mailbox):
    """Full runs, with failures (a 401 from each vendor), then edits forwarded: the access tokens and the consumer
    secret appear in no log, XCom, ledger row or alert (e-mail, webhook); with the override on, the buyer's e-mail and phone reach no vendor
    and the buyer's name only travels as the shipping recipient; decision lines name orders, never buyers."""
    world.settings(
        override_customer_data=True,
        merchant_contact=MERCHANT_CONTACT,
        **alert_settings(emails=["ops@marketplace.example"]),
    )
    ok = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    refused = world.order([(ACME, "ACME-WRENCH-L", 1, "19.00"), (BOLT, "BOLT-DRILL-18V", 1, "129.00")])
    everything = _Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(everything)
    root.setLevel(logging.DEBUG)
    results = []
    try:
        world.acme.add_fault("orderCreate", "http_error", status=401, times=1)
        world.bolt.add_fault("POST /orders", "http_error", status=401, times=1)
        results.append(world.run())
        assert results[0].state == "failed"
        for order in (ok, refused):  # one of them was pushed to each vendor: its edits are forwarded
            world.merchant.update_order(
                order["id"], note="leave at the door", email="jane.new@example.net", phone="+15550003333"
            )
        results.append(world.run())
        world.merchant.cancel_order(refused["id"])
        results.append(world.run())
    finally:
        root.removeHandler(everything)
        root.setLevel(previous)
    captured = capfd.readouterr()
    lines = [line for r in results for line in r.lines]
    failed = [line for line in results[0].lines if ": failed — " in line]
    assert len(failed) == 2 and all("HTTP 401" in line for line in failed), results[0].lines
    for vendor in (ACME, BOLT):
        assert sorted(results[1].outcome(o["name"], vendor) for o in (ok, refused)) == ["pushed", "updated"]
        assert results[2].outcome(refused["name"], vendor) == "cancelled"

    ledger = json.dumps(world.ledger().dump(include_scratch=True), default=str)
    xcoms = _xcom_values([rid for r in results for rid in _run_ids(r)])
    assert len(xcoms) >= 10, xcoms
    alerts = json.dumps(receiver.received) + "\n".join(mailbox.bodies())
    assert "HTTP 401" in alerts and len(mailbox.messages) == 1  # the failed run's one alert
    sources = {
        "ordersync log lines": "\n".join(lines),
        "log records": "\n".join(everything.texts),
        "stdout": captured.out,
        "stderr": captured.err,
        "xcom": "\n".join(xcoms),
        "ledger": ledger,
        "alerts": alerts,
    }
    airflow_logs = captured.out + captured.err + sources["log records"]
    assert "Task instance state updated" in airflow_logs  # the capture holds Airflow's task logs
    assert "HTTP 401" in airflow_logs  # ... including the failures
    for secret in SECRETS:
        for where, text in sources.items():
            assert secret not in text, f"{secret} in {where}"

    # Decision lines identify orders by name, never by the buyer's contact.
    decisions = [line for line in lines if line.startswith("order #")]
    assert decisions
    for line in lines:
        for pii in (
            BUYER["email"],
            BUYER["phone"],
            BUYER["address_phone"],
            "jane.new@example.net",
            "+15550003333",
        ):
            assert pii not in line, line
    for where, text in sources.items():  # nor does any other log line or XCom value
        if where != "ledger":
            for pii in (BUYER["email"], BUYER["phone"], "jane.new@example.net", "+15550003333"):
                assert pii not in text, f"{pii} in {where}"
    for row in world.ledger().dump()["ordersync_decisions"]:
        assert BUYER["email"] not in row["reason"] and BUYER["phone"] not in row["reason"]

    # What the vendor stores received: no buyer e-mail or phone anywhere; the buyer's name only in the shipping
    # address (every request: lookups, creates, failed creates, updates, cancellations).
    bodies = [e for e in world.acme.requests + world.bolt.requests]
    assert any(e["operation"] == "orderUpdate" for e in bodies) and any(
        e["operation"] == "orderCancel" for e in bodies
    )
    for entry in bodies:
        text = json.dumps(entry, default=str)
        for pii in (
            BUYER["email"],
            BUYER["phone"],
            BUYER["address_phone"],
            "jane.new@example.net",
            "+15550003333",
        ):
            assert pii not in text, (pii, entry)
        if BUYER["last"] in text:
            body = entry["body"]
            payload = (
                body["variables"].get("order") or body["variables"].get("input")
                if "variables" in body
                else body
            )
            carriers = [k for k, v in payload.items() if BUYER["last"] in json.dumps(v)]
            assert carriers in (["shippingAddress"], ["shipping"]), (carriers, entry)
