"""Per-vendor settings and the push delay (issue 16), through the real order_sync DAG against the sandbox stores.

A vendor entry's ``settings`` replace the global values for that vendor only; each decision line names the value
that decided and where it came from. ``push_delay_minutes`` holds a young order and the first run after the delay
pushes it although the order never changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import ACME, BOLT, BUYER, MERCHANT_CONTACT

pytestmark = pytest.mark.e2e

PII = (BUYER["email"], BUYER["phone"], BUYER["address_phone"])


def _with_settings(world, **per_vendor: dict) -> None:
    world.set_vendors(
        [
            {**v, "settings": per_vendor[v["vendor"]]} if v["vendor"] in per_vendor else v
            for v in world.vendors
        ]
    )


def _sent(store, operation: str) -> list[str]:
    return [json.dumps(e, default=str) for e in store.requests if e["operation"] == operation]


def test_a_vendor_pushes_unpaid_orders_with_the_merchant_contact_while_the_other_waits(world):
    """Global: only paid orders, the buyer is the customer. Bolt: unpaid orders too, and the merchant's contact
    replaces the buyer's."""
    _with_settings(
        world,
        **{
            BOLT: {
                "push_only_if_paid": False,
                "override_customer_data": True,
                "merchant_contact": MERCHANT_CONTACT,
            }
        },
    )
    order = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")], status="PENDING"
    )
    first = world.run()
    assert first.state == "success", first.lines
    assert first.outcome(order["name"], ACME) == "held"
    assert (
        "order is PENDING, not PAID (push_only_if_paid=true, global)"
        in first.decisions(order["name"], ACME)[0]
    )
    assert first.outcome(order["name"], BOLT) == "pushed"
    assert world.acme_orders() == []
    [bolt] = world.bolt_orders()
    assert (
        bolt["billing"]["email"] == MERCHANT_CONTACT["email"]
        and bolt["billing"]["phone"] == MERCHANT_CONTACT["phone"]
    )
    assert bolt["shipping"]["first_name"] == BUYER["first"]  # the buyer's name only as the recipient
    for body in _sent(world.bolt, "POST /orders"):
        for pii in PII:
            assert pii not in body, pii
    said = " ".join(first.decisions(order["name"], BOLT))
    assert "vendor Bolt Supply" in said, said  # which value decided, and where it came from

    # Paid: Acme gets it with the buyer's contact (its override is the global one: off).
    world.merchant.update_order(order["id"], displayFinancialStatus="PAID")
    second = world.run()
    assert second.outcome(order["name"], ACME) == "pushed"
    [acme] = world.acme_orders()
    assert acme["email"] == BUYER["email"]
    assert len(world.bolt_orders()) == 1


def test_the_override_mixed_per_vendor_keeps_the_buyer_contact_from_the_vendor_that_has_it(world):
    """Global override on; Acme's own settings turn it off. Bolt (global: on) gets no buyer e-mail or phone in any
    request; Acme gets the buyer."""
    world.settings(override_customer_data=True, merchant_contact=MERCHANT_CONTACT)
    _with_settings(world, **{ACME: {"override_customer_data": False}})
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    result = world.run()
    assert result.state == "success", result.lines
    [acme] = world.acme_orders()
    [bolt] = world.bolt_orders()
    assert acme["email"] == BUYER["email"]
    assert bolt["billing"]["email"] == MERCHANT_CONTACT["email"]
    for entry in world.bolt.requests:
        text = json.dumps(entry, default=str)
        for pii in PII:
            assert pii not in text, (pii, entry["operation"])
    world.merchant.update_order(
        order["id"], note="ring twice", email="jane.new@example.net", phone="+15550003333"
    )
    assert world.run().outcome(order["name"], BOLT) == "updated"
    for entry in world.bolt.requests:
        text = json.dumps(entry, default=str)
        assert "jane.new@example.net" not in text and "+15550003333" not in text


def test_push_delay_holds_a_young_order_and_a_later_run_pushes_it_unchanged(world):
    world.settings(push_delay_minutes=10)
    created = datetime.now(UTC) - timedelta(minutes=3)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    order = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], createdAt=stamp)
    first = world.run()
    assert first.state == "success", first.lines
    assert first.outcome(order["name"], ACME) == "held"
    due = (created.replace(second=0) + timedelta(minutes=10)).strftime("%H:%M")
    [line] = first.decisions(order["name"], ACME)
    assert "pushed after" in line and f"{due} UTC" in line and "push_delay_minutes=10, global" in line, line
    assert world.acme_orders() == []

    # Still young: re-read, held, and not said again.
    again = world.run()
    assert again.decisions(order["name"]) == [] and world.acme_orders() == []
    assert any("reported once already" in line and "push_delay_minutes" in line for line in again.lines)

    # Time passes (the store's clock: createdAt moves back; updatedAt is kept, so the order did not change).
    before = world.merchant.get_order(order["id"])["updatedAt"]
    old = (datetime.now(UTC) - timedelta(minutes=11)).strftime("%Y-%m-%dT%H:%M:%SZ")
    world.merchant.update_order(order["id"], createdAt=old, updatedAt=before)
    assert world.merchant.get_order(order["id"])["updatedAt"] == before
    later = world.run()
    assert later.outcome(order["name"], ACME) == "pushed", later.lines
    assert len(world.acme_orders()) == 1


def test_a_manual_run_naming_a_young_order_waives_the_delay(world):
    world.settings(push_delay_minutes=60)
    order = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    assert world.run().outcome(order["name"], BOLT) == "held"
    named = world.run(order_ids=[order["name"]])
    assert named.outcome(order["name"], BOLT) == "pushed"
    assert len(world.bolt_orders()) == 1


def test_a_high_risk_order_is_held_and_pushed_by_a_manual_run_naming_it(world):
    world.settings(hold_risky_orders=True)
    risky = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00")],
        risk={"level": "HIGH", "message": "Card declined twice", "provider": "FraudFilter"},
    )
    calm = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], risk={"level": "LOW", "message": "ok"})
    first = world.run()
    assert first.state == "success", first.lines
    assert first.outcome(calm["name"], ACME) == "pushed"
    assert first.outcome(risky["name"], ACME) == "held"
    [line] = first.decisions(risky["name"], ACME)
    assert (
        "risk HIGH" in line and "Card declined twice" in line and "hold_risky_orders=true, global" in line
    ), line

    again = world.run()  # re-read (the risk may drop without the order changing), held, not said again
    assert again.decisions(risky["name"]) == []
    assert len(world.acme_orders()) == 1

    named = world.run(order_ids=[risky["name"]])
    assert named.outcome(risky["name"], ACME) == "pushed"
    assert named.decisions(risky["name"], ACME), named.lines
    assert len(world.acme_orders()) == 2


def test_a_held_risky_order_goes_when_its_risk_drops_without_any_other_change(world):
    world.settings(hold_risky_orders=True)
    order = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")], risk={"level": "HIGH", "message": "proxy IP"})
    assert world.run().outcome(order["name"], BOLT) == "held"
    before = world.merchant.get_order(order["id"])["updatedAt"]
    world.merchant.update_order(order["id"], risk={"level": "LOW", "message": "reviewed"}, updatedAt=before)
    later = world.run()
    assert later.outcome(order["name"], BOLT) == "pushed", later.lines
    assert len(world.bolt_orders()) == 1


def test_a_vendor_can_hold_risky_orders_when_the_others_do_not(world):
    _with_settings(world, **{BOLT: {"hold_risky_orders": True}})
    order = world.order(
        [(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")],
        risk={"level": "HIGH", "message": "mismatched address"},
    )
    result = world.run()
    assert result.outcome(order["name"], ACME) == "pushed"
    assert result.outcome(order["name"], BOLT) == "held"
    assert "hold_risky_orders=true, vendor Bolt Supply" in result.decisions(order["name"], BOLT)[0]
