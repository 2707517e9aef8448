"""tracking_sync's pure parts: the carrier map, the tracking fingerprint, line matching, fulfilment lookup."""

from __future__ import annotations

import pytest

from ordersync.decisions import tracking_line
from ordersync.tracking.carriers import shopify_company
from ordersync.tracking.match import find_fulfillment, match_lines
from ordersync.tracking.model import (
    FulfillmentOrder,
    FulfillmentOrderLine,
    MerchantFulfillment,
    Tracking,
    combine,
)

ACME = "Acme Tools"


@pytest.mark.parametrize(
    "vendor_name, shopify",
    [
        ("USPS", "USPS"),
        ("Royal Mail", "Royal Mail"),
        ("royal-mail", "Royal Mail"),
        ("Fedex", "FedEx"),
        ("FedEx", "FedEx"),
        ("UPS", "UPS"),
        ("DHL", "DHL Express"),
        ("DPD.co.uk", "DPD UK"),
        ("Speedy Parcels", "Speedy Parcels"),
        (" Local Courier ", "Local Courier"),
        (None, None),
        ("", None),
    ],
)
def test_carrier_map(vendor_name, shopify):
    assert shopify_company(vendor_name) == shopify


def test_tracking_input_and_fingerprint():
    t = Tracking("UPS", ("1Z1", "1Z2"), ("https://u/1", "https://u/2"))
    assert t.as_input() == {
        "company": "UPS",
        "numbers": ["1Z1", "1Z2"],
        "urls": ["https://u/1", "https://u/2"],
    }
    # URLs go only when every number has one (Shopify pairs them by position)
    assert "urls" not in Tracking("UPS", ("1Z1", "1Z2"), ("https://u/1", "")).as_input()
    assert t.fingerprint() == Tracking("UPS", ("1Z1", "1Z2"), ("https://u/1", "https://u/2")).fingerprint()
    assert t.fingerprint() != Tracking("UPS", ("1Z1",), ("https://u/1",)).fingerprint()
    both = combine([Tracking("Royal Mail", ("RM1",), ("https://rm/1",)), Tracking("Speedy", ("SP1",), ())])
    assert (
        both.company == "Royal Mail" and both.numbers == ("RM1", "SP1") and both.urls == ("https://rm/1", "")
    )


def _fo(fo_id, lines, status="OPEN", location="L1"):
    return FulfillmentOrder(
        fo_id, status, location, [FulfillmentOrderLine(i, r, sku, vendor) for i, r, sku, vendor in lines]
    )


def test_match_lines_only_this_vendors_lines_and_remaining_quantities():
    fos = [_fo("FO1", [("a", 3, "HAMMER", ACME), ("b", 1, "HAMMER", "Other"), ("c", 2, "BOLT", "Bolt")])]
    plan = match_lines(ACME, [("HAMMER", 2)], fos)
    assert plan.groups == [
        {"fulfillmentOrderId": "FO1", "fulfillmentOrderLineItems": [{"id": "a", "quantity": 2}]}
    ]
    assert plan.shipped == [("HAMMER", 2)] and plan.unplaced == []
    # more than remains: the rest is reported, never placed on another vendor's line
    plan = match_lines(ACME, [("HAMMER", 5), ("BOLT", 1)], fos)
    assert plan.groups[0]["fulfillmentOrderLineItems"] == [{"id": "a", "quantity": 3}]
    assert plan.unplaced == [("HAMMER", 2), ("BOLT", 1)]


def test_match_lines_spreads_over_lines_skips_closed_and_other_locations():
    fos = [
        _fo("FO0", [("z", 5, "HAMMER", ACME)], status="CLOSED"),
        _fo("FO1", [("a", 1, "HAMMER", ACME), ("b", 2, "HAMMER", ACME)]),
        _fo("FO2", [("c", 4, "HAMMER", ACME)], location="L2"),
    ]
    plan = match_lines(ACME, [("HAMMER", 2), ("HAMMER", 2)], fos)
    assert plan.groups == [
        {
            "fulfillmentOrderId": "FO1",
            "fulfillmentOrderLineItems": [{"id": "a", "quantity": 1}, {"id": "b", "quantity": 2}],
        }
    ]
    assert plan.location_id == "L1" and plan.unplaced == [("HAMMER", 1)]
    assert match_lines(ACME, [("NOPE", 1)], fos).empty


def test_find_fulfillment_by_tracking_numbers():
    fs = [
        MerchantFulfillment("F1", "SUCCESS", Tracking("UPS", ("1Z1",))),
        MerchantFulfillment("F2", "CANCELLED", Tracking("UPS", ("1Z2",))),
        MerchantFulfillment("F3", "SUCCESS", Tracking("UPS", ("1Z2", "1Z3"))),
        MerchantFulfillment("F4", "SUCCESS", Tracking(None, ())),
    ]
    assert find_fulfillment(fs, Tracking("UPS", ("1Z1",)), set()).id == "F1"
    assert find_fulfillment(fs, Tracking("UPS", ("1Z1",)), {"F1"}) is None  # already owned by a shipment
    assert find_fulfillment(fs, Tracking("UPS", ("1Z3", "1Z2")), set()).id == "F3"
    assert find_fulfillment(fs, Tracking("UPS", ("1Z2",)), set()).id == "F3"  # shares a number; F2 cancelled
    assert find_fulfillment(fs, Tracking(None, ()), set()).id == "F4"


def test_tracking_line_shape():
    line = tracking_line(
        "#1001", ACME, "gid://shopify/Fulfillment/1", "written", "created merchant fulfilment F"
    )
    assert line == (
        "tracking order #1001 → vendor 'Acme Tools' shipment gid://shopify/Fulfillment/1: written — "
        "created merchant fulfilment F"
    )
    assert tracking_line("#1", ACME, "k", "waiting", "x", dry_run=True).startswith(
        "[dry run] tracking order #1 "
    )
