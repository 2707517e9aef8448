"""The Order Sync page's read model (ordersync.ledger.story) over a ledger real runs wrote.

order_sync and tracking_sync run through Airflow against the sandbox stores (SQLite and PostgreSQL ledgers):
one order pushed to both vendors and shipped by one, one held as unpaid, one held on an unmapped SKU, one whose
create the vendor refused. The story of each is what the page and the JSON API show; the HTTP side (login,
masking, Sync again) is tests/stack/test_order_sync_page.py.
"""

from __future__ import annotations

import pytest

from ordersync.ledger.story import STATES, Story
from tests.e2e.conftest import ACME, BOLT, BUYER

pytestmark = pytest.mark.e2e


def _story(world) -> Story:
    return Story(world.ledger().engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request, tracking_sync_dag):
    world = request.getfixturevalue("world" if request.param == "sqlite" else "pg_world")
    world.tracking_dag = tracking_sync_dag
    return world


def test_each_order_tells_its_story(any_world):
    world = any_world
    shipped = world.order([(ACME, "ACME-HAMMER", 1, "24.00"), (BOLT, "BOLT-M6-100", 2, "9.50")])
    unpaid = world.order([(ACME, "ACME-HAMMER", 1, "24.00")], status="PENDING")
    unmapped = world.order([(ACME, "ACME-NOT-IN-STORE", 3, "5.00"), (ACME, "ACME-HAMMER", 1, "24.00")])
    refused = world.order([(BOLT, "BOLT-M6-100", 1, "9.50")])
    world.bolt.add_fault("POST /orders", "http_error", status=400, times=1)  # the first Bolt create
    first = world.run()
    assert first.state in ("success", "failed"), first.lines
    failed_name = next(n for n in (shipped["name"], refused["name"]) if first.outcome(n, BOLT) == "failed")
    acme_id = world.ledger().pairs([shipped["id"]], ACME)[(shipped["id"], ACME)].vendor_order_id
    world.acme.fulfill_order(acme_id, company="UPS", number="1ZSTORY1")
    assert world.run_tracking(order_ids=[shipped["name"]]).state == "success"
    story = _story(world)

    # pushed, shipped: by name, numeric id and GID alike
    for ref in (shipped["name"], shipped["legacyResourceId"], shipped["id"], shipped["name"].lstrip("#")):
        told = story.order(ref)
        assert told is not None, ref
        assert (
            told["merchant_order"]["id"] == shipped["id"]
            and told["merchant_order"]["name"] == shipped["name"]
        )
    told = story.order(shipped["name"])
    acme = next(s for s in told["shares"] if s["vendor"] == ACME)
    assert acme["state"] == "pushed" and acme["vendor_order_id"] == acme_id and acme["attempts"] == 1
    assert acme["vendor_order_name"]
    [shipment] = acme["shipments"]
    assert (
        shipment["numbers"] == ["1ZSTORY1"]
        and shipment["company"] == "UPS"
        and shipment["state"] == "written"
    )
    assert shipment["dag_id"] == "tracking_sync"
    assert [d["outcome"] for d in acme["decisions"]][-1] == "pushed"  # newest first: the push is the oldest
    assert {d["dag_id"] for d in acme["decisions"]} <= {"order_sync", "tracking_sync"}
    assert all(not d["run_id"].startswith(("order_sync/", "tracking_sync/")) for d in acme["decisions"])
    assert told["merchant_order"]["buyer"] == {
        "name": f"{BUYER['first']} {BUYER['last']}",
        "email": BUYER["email"],
        "phone": BUYER["phone"],
    }  # the read model has the contact; the web layer masks it
    assert told["merchant_order"]["financial_status"] == "PAID"

    # held: unpaid, with the reason
    [share] = story.order(unpaid["name"])["shares"]
    assert share["state"] == "held" and share["hold_kind"] == "unpaid"
    assert "PENDING" in share["reason"] and share["vendor_order_id"] is None

    # held: unmapped, naming the SKU it waits on
    [share] = story.order(unmapped["name"])["shares"]
    assert share["state"] == "held" and share["hold_kind"] == "unmapped"
    assert share["unmapped_skus"] == ["ACME-NOT-IN-STORE"] and "ACME-NOT-IN-STORE" in share["reason"]

    # failed: the vendor's error and the alert's suggested fix
    bolt = next(s for s in story.order(failed_name)["shares"] if s["vendor"] == BOLT)
    assert bolt["state"] == "failed" and "400" in (bolt["last_error"] or "")
    assert bolt["suggestion"], bolt

    # unknown to ordersync
    assert story.order("#999999") is None and story.order("gid://shopify/Order/1") is None
    assert story.order("") is None

    # lists
    assert {s["merchant_order_name"] for s in story.shares(state="held")} == {
        unpaid["name"],
        unmapped["name"],
    }
    assert [s["vendor"] for s in story.shares(state="failed")] == [BOLT]
    assert {s["vendor"] for s in story.shares(q=shipped["name"])} == {ACME, BOLT}
    assert story.shares(state="pushed", vendor=BOLT, limit=5) and all(
        s["vendor"] == BOLT and s["state"] == "pushed" for s in story.shares(state="pushed", vendor=BOLT)
    )

    # the overview
    facts = story.overview()
    assert set(facts["totals"]) == set(STATES)
    assert facts["totals"]["held"] == 2 and facts["totals"]["failed"] == 1
    assert facts["totals"]["pushed"] == 2  # shipped → Acme; the one Bolt create that was not refused
    assert facts["vendors"][ACME]["held"] == 2 and facts["vendors"][BOLT]["failed"] == 1
    assert facts["held_by_reason"]["unpaid"] == {"total": 1, "vendors": {ACME: 1}}
    assert facts["held_by_reason"]["unmapped"] == {"total": 1, "vendors": {ACME: 1}}
    assert facts["unmapped_skus"] == {ACME: [{"sku": "ACME-NOT-IN-STORE", "orders": 1}]}
    [failure] = facts["latest_failures"]
    assert failure["merchant_order_name"] == failed_name and failure["suggestion"]
    assert len(facts["last_24h"]) == 24
    now_hour = facts["last_24h"][-1]
    assert now_hour["pushed"] >= 2 and now_hour["held"] >= 2 and now_hour["failed"] >= 1
