"""The WooCommerce REST v3 store, over real HTTP on loopback."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import requests

from ordersync_sandbox.server import StoreServer
from ordersync_sandbox.woocommerce import TRACKING_META_KEY, WooError, WooStore

KEY, SECRET = "ck_test", "cs_test"


class Clock:
    """A controllable clock for the store."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 3, 40, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def woo():
    clock = Clock()
    store = WooStore("bolt", KEY, SECRET, now=clock)
    store.test_clock = clock  # type: ignore[attr-defined]
    server = StoreServer(store).start()
    session = requests.Session()
    session.auth = (KEY, SECRET)
    try:
        yield store, session
    finally:
        session.close()
        server.stop()


@pytest.fixture
def catalog(woo):
    store, session = woo
    bolts = store.add_product("Hex bolts M6 (100)", "BOLT-M6-100", "9.50")
    drill = store.add_product("Cordless drill", "BOLT-DRILL", "0", type="variable")
    drill18 = store.add_variation(
        drill["id"], "BOLT-DRILL-18V", "129.00", attributes=[{"name": "Voltage", "option": "18V"}]
    )
    return store, session, {"bolts": bolts, "drill": drill, "drill18": drill18}


def api(store: WooStore, path: str) -> str:
    return f"{store.url}/wp-json/wc/v3{path}"


def tracking_api(store: WooStore, path: str) -> str:
    return f"{store.url}/wp-json/wc-shipment-tracking/v3{path}"


def new_order(session: requests.Session, store: WooStore, **fields) -> dict:
    r = session.post(api(store, "/orders"), json=fields, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- auth, routing, errors


def test_auth_basic_and_query_keys(woo):
    store, session = woo
    assert session.get(api(store, "/orders"), timeout=5).status_code == 200
    r = requests.get(
        api(store, "/orders"), params={"consumer_key": KEY, "consumer_secret": SECRET}, timeout=5
    )
    assert r.status_code == 200 and r.json() == []


def test_auth_missing_is_401_with_per_method_message(woo):
    store, _ = woo
    r = requests.get(api(store, "/orders"), timeout=5)
    assert r.status_code == 401
    assert r.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }
    r = requests.post(api(store, "/orders"), json={}, timeout=5)
    assert (r.status_code, r.json()["code"]) == (401, "woocommerce_rest_cannot_create")
    r = requests.put(api(store, "/orders/5001"), json={}, timeout=5)
    assert (r.status_code, r.json()["code"]) == (401, "woocommerce_rest_cannot_edit")
    assert store.orders == []


def test_auth_wrong_key_or_secret_is_401(woo):
    store, _ = woo
    r = requests.get(api(store, "/orders"), auth=("ck_wrong", SECRET), timeout=5)
    assert r.status_code == 401 and r.json()["message"] == "Consumer key is invalid."
    r = requests.get(api(store, "/orders"), auth=(KEY, "cs_wrong"), timeout=5)
    assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_authentication_error"
    header = "Basic " + base64.b64encode(f"{KEY}:nope".encode()).decode()
    assert (
        requests.get(api(store, "/products"), headers={"Authorization": header}, timeout=5).status_code == 401
    )


def test_unknown_route_bad_json_and_invalid_ids(woo):
    store, session = woo
    r = session.get(f"{store.url}/wp-json/wc/v3/nothing-here", timeout=5)
    assert r.status_code == 404 and r.json()["code"] == "rest_no_route"
    assert session.patch(api(store, "/orders"), json={}, timeout=5).json()["code"] == "rest_no_route"
    r = session.post(
        api(store, "/orders"), data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert r.status_code == 400 and r.json()["code"] == "rest_invalid_json"
    r = session.get(api(store, "/orders/9999"), timeout=5)
    assert r.status_code == 404 and r.json() == {
        "code": "woocommerce_rest_shop_order_invalid_id",
        "message": "Invalid ID.",
        "data": {"status": 404},
    }
    assert (
        session.get(api(store, "/products/9999"), timeout=5).json()["code"]
        == "woocommerce_rest_product_invalid_id"
    )


def test_operation_labels_and_is_write(woo):
    store, session = woo
    session.get(api(store, "/orders/5001"), timeout=5)
    session.post(api(store, "/orders"), json={}, timeout=5)
    session.put(api(store, "/orders/5001/"), json={}, timeout=5)
    session.post(tracking_api(store, "/orders/5001/shipment-trackings"), json={}, timeout=5)
    session.delete(tracking_api(store, "/orders/5001/shipment-trackings/abcdef0123"), timeout=5)
    session.get(tracking_api(store, "/orders/5001/shipment-trackings/providers"), timeout=5)
    session.get(api(store, "/products"), params={"sku": "A"}, timeout=5)
    log = store.log()
    assert [e["operation"] for e in log] == [
        "GET /orders/{id}",
        "POST /orders",
        "PUT /orders/{id}",
        "POST /orders/{id}/shipment-trackings",
        "DELETE /orders/{id}/shipment-trackings/{id}",
        "GET /orders/{id}/shipment-trackings/providers",
        "GET /products",
    ]
    assert [e["write"] for e in log] == [False, True, True, True, True, False, False]


# ---------------------------------------------------------------- products


def test_products_sku_filter_includes_variations(catalog):
    store, session, items = catalog
    r = session.get(api(store, "/products"), params={"sku": "BOLT-M6-100,BOLT-DRILL-18V,NOPE"}, timeout=5)
    assert r.status_code == 200
    by_sku = {p["sku"]: p for p in r.json()}
    assert set(by_sku) == {"BOLT-M6-100", "BOLT-DRILL-18V"}
    assert by_sku["BOLT-M6-100"]["type"] == "simple" and by_sku["BOLT-M6-100"]["parent_id"] == 0
    variation = by_sku["BOLT-DRILL-18V"]
    assert variation["type"] == "variation" and variation["parent_id"] == items["drill"]["id"]
    assert variation["price"] == "129.00" and variation["name"] == "Cordless drill - 18V"
    assert r.headers["X-WP-Total"] == "2"
    # exact match only
    assert session.get(api(store, "/products"), params={"sku": "BOLT"}, timeout=5).json() == []
    # without a sku filter variations are not listed
    plain = session.get(api(store, "/products"), timeout=5).json()
    assert {p["type"] for p in plain} == {"simple", "variable"}
    assert session.get(api(store, "/products"), params={"type": "variable"}, timeout=5).json()[0][
        "variations"
    ] == [items["drill18"]["id"]]


def test_product_item_variations_and_search(catalog):
    store, session, items = catalog
    drill_id = items["drill"]["id"]
    product = session.get(api(store, f"/products/{drill_id}"), timeout=5).json()
    assert product["type"] == "variable" and product["attributes"][0]["options"] == ["18V"]
    variations = session.get(api(store, f"/products/{drill_id}/variations"), timeout=5).json()
    assert [v["sku"] for v in variations] == ["BOLT-DRILL-18V"]
    one = session.get(api(store, f"/products/{drill_id}/variations/{items['drill18']['id']}"), timeout=5)
    assert one.status_code == 200 and one.json()["parent_id"] == drill_id
    found = session.get(api(store, "/products"), params={"search": "hex"}, timeout=5).json()
    assert [p["sku"] for p in found] == ["BOLT-M6-100"]
    found = session.get(api(store, "/products"), params={"include": str(drill_id)}, timeout=5).json()
    assert [p["id"] for p in found] == [drill_id]


def test_products_pagination_headers_and_per_page_limits(woo):
    store, session = woo
    for i in range(25):
        store.add_product(f"Item {i}", f"SKU-{i:02d}", "1.00")
    r = session.get(api(store, "/products"), timeout=5)
    assert len(r.json()) == 10  # default per_page
    assert (r.headers["X-WP-Total"], r.headers["X-WP-TotalPages"]) == ("25", "3")
    assert 'rel="next"' in r.headers["Link"]
    r = session.get(
        api(store, "/products"),
        params={"per_page": 10, "page": 3, "orderby": "id", "order": "asc"},
        timeout=5,
    )
    assert [p["sku"] for p in r.json()] == [f"SKU-{i:02d}" for i in range(20, 25)]
    assert 'rel="prev"' in r.headers["Link"] and 'rel="next"' not in r.headers["Link"]
    assert session.get(api(store, "/products"), params={"page": 4}, timeout=5).json() == []
    for bad in (0, 101):
        r = session.get(api(store, "/products"), params={"per_page": bad}, timeout=5)
        assert r.status_code == 400 and r.json()["code"] == "rest_invalid_param"
    assert (
        session.get(api(store, "/products"), params={"per_page": 100}, timeout=5).headers["X-WP-TotalPages"]
        == "1"
    )


def test_duplicate_sku_is_refused(woo):
    store, _ = woo
    store.add_product("A", "DUP")
    with pytest.raises(ValueError):
        store.add_product("B", "DUP")


# ---------------------------------------------------------------- orders


def test_create_paid_order_from_catalog(catalog):
    store, session, items = catalog
    order = new_order(
        session,
        store,
        set_paid=True,
        currency="USD",
        billing={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "country": "US"},
        shipping={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address_1": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postcode": "62701",
            "country": "US",
        },
        line_items=[
            {"product_id": items["bolts"]["id"], "quantity": 2},
            {"product_id": items["drill"]["id"], "variation_id": items["drill18"]["id"], "quantity": 1},
        ],
        shipping_lines=[{"method_id": "flat_rate", "method_title": "Flat rate", "total": "5.00"}],
        meta_data=[{"key": "_ordersync_marker", "value": "m-1"}],
        customer_note="Leave at door",
    )
    assert order["id"] == 5001 and order["number"] == "5001"
    assert order["status"] == "processing" and order["created_via"] == "rest-api"
    assert order["date_created"] == order["date_created_gmt"] == "2026-11-27T03:40:00"
    assert order["date_paid"] == order["date_paid_gmt"] == "2026-11-27T03:40:00"
    assert order["order_key"].startswith("wc_order_")
    bolts, drill = order["line_items"]
    assert (
        bolts["name"],
        bolts["sku"],
        bolts["quantity"],
        bolts["subtotal"],
        bolts["total"],
        bolts["price"],
    ) == ("Hex bolts M6 (100)", "BOLT-M6-100", 2, "19.00", "19.00", 9.5)
    assert (drill["product_id"], drill["variation_id"], drill["sku"], drill["total"]) == (
        items["drill"]["id"],
        items["drill18"]["id"],
        "BOLT-DRILL-18V",
        "129.00",
    )
    assert order["shipping_total"] == "5.00" and order["total"] == "153.00"
    assert order["billing"]["email"] == "ada@example.com" and order["billing"]["phone"] == ""
    assert order["shipping"]["city"] == "Springfield" and "email" not in order["shipping"]
    assert order["meta_data"][0]["key"] == "_ordersync_marker" and isinstance(
        order["meta_data"][0]["id"], int
    )
    assert order["customer_note"] == "Leave at door"
    assert store.get_order(5001) == order


def test_create_unpaid_order_is_pending(catalog):
    store, session, items = catalog
    order = new_order(session, store, line_items=[{"product_id": items["bolts"]["id"], "quantity": 1}])
    assert order["status"] == "pending" and order["date_paid"] is None
    assert order["currency"] == "USD" and order["total"] == "9.50"
    assert new_order(session, store, status="on-hold")["status"] == "on-hold"


def test_custom_line_items_need_a_reference_unless_relaxed(woo):
    store, session = woo
    custom = {
        "name": "Mystery part - Large",
        "price": "12.50",
        "quantity": 2,
        "subtotal": "25.00",
        "total": "25.00",
        "meta_data": [{"key": "SKU", "value": "ZED-1"}],
    }
    r = session.post(api(store, "/orders"), json={"line_items": [custom]}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "woocommerce_rest_required_product_reference"
    # An unknown SKU is a reference: WooCommerce keeps the line without a product.
    order = new_order(
        session,
        store,
        set_paid=True,
        line_items=[{"name": "Loose item", "sku": "LOOSE-1", "quantity": 3, "total": "6.00"}],
    )
    [loose] = order["line_items"]
    assert (loose["product_id"], loose["sku"], loose["subtotal"], loose["price"]) == (
        0,
        "LOOSE-1",
        "6.00",
        2.0,
    )
    relaxed = WooStore("relaxed", KEY, SECRET, require_product_reference=False)
    made = relaxed.create_order(line_items=[custom])
    [first] = made["line_items"]
    assert (first["product_id"], first["variation_id"], first["name"], first["total"], first["price"]) == (
        0,
        0,
        "Mystery part - Large",
        "25.00",
        12.5,
    )
    assert first["meta_data"][0]["key"] == "SKU" and first["meta_data"][0]["value"] == "ZED-1"


def test_line_item_sku_resolves_to_the_catalog_product(catalog):
    store, session, items = catalog
    order = new_order(session, store, line_items=[{"sku": "BOLT-DRILL-18V", "quantity": 1}])
    assert order["line_items"][0]["variation_id"] == items["drill18"]["id"]


def test_line_item_without_reference_or_name_is_refused(woo):
    store, session = woo
    r = session.post(api(store, "/orders"), json={"line_items": [{"quantity": 2}]}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "woocommerce_rest_required_product_reference"
    strict = WooStore("strict", KEY, SECRET)
    with pytest.raises(WooError) as err:
        strict.create_order(line_items=[{"name": "Custom", "total": "5.00"}])
    assert err.value.code == "woocommerce_rest_required_product_reference"
    assert store.orders == [] and strict.orders == []


def test_invalid_product_is_400_and_commits_nothing(catalog):
    store, session, items = catalog
    r = session.post(
        api(store, "/orders"),
        json={
            "line_items": [
                {"product_id": items["bolts"]["id"], "quantity": 1},
                {"product_id": 424242, "quantity": 1},
            ]
        },
        timeout=5,
    )
    assert r.status_code == 400
    assert r.json()["code"] == "woocommerce_rest_invalid_product_id" and r.json()["data"]["status"] == 400
    r = session.post(
        api(store, "/orders"), json={"line_items": [{"variation_id": items["bolts"]["id"]}]}, timeout=5
    )
    assert r.json()["code"] == "woocommerce_rest_invalid_product_id"
    assert store.orders == []
    assert store.writes() == []
    # ids were not consumed by the refused requests
    assert new_order(session, store)["id"] == 5001


def test_invalid_params_on_create(woo):
    store, session = woo
    for body, param in (
        ({"status": "shipped"}, "status"),
        ({"billing": {"email": "not-an-email"}}, "billing"),
        ({"currency": "usd"}, "currency"),
        ({"line_items": "x"}, "line_items"),
    ):
        r = session.post(api(store, "/orders"), json=body, timeout=5)
        assert r.status_code == 400 and r.json()["code"] == "rest_invalid_param", body
        assert param in r.json()["data"]["params"]
    assert store.orders == []


def test_list_orders_filters(catalog):
    store, session, _ = catalog
    clock = store.test_clock
    first = new_order(session, store, billing={"first_name": "Ada", "email": "ada@example.com"})
    clock.advance(hours=1)
    second = new_order(session, store, set_paid=True, billing={"first_name": "Grace", "last_name": "Hopper"})
    clock.advance(hours=1)
    third = new_order(session, store, status="completed", shipping={"last_name": "Turing"})
    ids = lambda r: [o["id"] for o in r.json()]  # noqa: E731

    r = session.get(api(store, "/orders"), timeout=5)
    assert ids(r) == [third["id"], second["id"], first["id"]]  # newest first by default
    assert r.headers["X-WP-Total"] == "3" and r.headers["X-WP-TotalPages"] == "1"
    r = session.get(
        api(store, "/orders"),
        params={"after": "2026-11-27T04:00:00", "orderby": "date", "order": "asc"},
        timeout=5,
    )
    assert ids(r) == [second["id"], third["id"]]
    # after is strict; timezone offsets are honoured
    assert ids(session.get(api(store, "/orders"), params={"after": "2026-11-27T04:40:00"}, timeout=5)) == [
        third["id"]
    ]
    assert ids(
        session.get(api(store, "/orders"), params={"after": "2026-11-27T06:00:00+02:00"}, timeout=5)
    ) == [third["id"], second["id"]]
    assert ids(session.get(api(store, "/orders"), params={"before": "2026-11-27T04:00:00Z"}, timeout=5)) == [
        first["id"]
    ]
    assert ids(session.get(api(store, "/orders"), params={"status": "processing,completed"}, timeout=5)) == [
        third["id"],
        second["id"],
    ]
    assert ids(session.get(api(store, "/orders"), params={"status": "pending"}, timeout=5)) == [first["id"]]
    assert ids(session.get(api(store, "/orders"), params={"search": "hopper"}, timeout=5)) == [second["id"]]
    assert ids(session.get(api(store, "/orders"), params={"search": "turing"}, timeout=5)) == [third["id"]]
    assert ids(session.get(api(store, "/orders"), params={"search": "ada@example"}, timeout=5)) == [
        first["id"]
    ]
    assert ids(
        session.get(
            api(store, "/orders"),
            params={"include": f"{first['id']},{third['id']}", "orderby": "id", "order": "asc"},
            timeout=5,
        )
    ) == [first["id"], third["id"]]
    r = session.get(api(store, "/orders"), params={"per_page": 2, "page": 2}, timeout=5)
    assert ids(r) == [first["id"]] and r.headers["X-WP-TotalPages"] == "2"
    assert session.get(api(store, "/orders"), params={"status": "bogus"}, timeout=5).status_code == 400
    assert session.get(api(store, "/orders"), params={"after": "yesterday"}, timeout=5).status_code == 400

    # modified_after sees an old order once it changes
    clock.advance(hours=1)
    store.set_status(first["id"], "cancelled")
    r = session.get(api(store, "/orders"), params={"modified_after": "2026-11-27T05:40:00"}, timeout=5)
    assert ids(r) == [first["id"]]
    r = session.get(api(store, "/orders"), params={"modified_after": "2026-11-27T05:00:00"}, timeout=5)
    assert ids(r) == [third["id"], first["id"]]  # still ordered by date created
    r = session.get(api(store, "/orders"), params={"orderby": "modified", "order": "desc"}, timeout=5)
    assert ids(r)[0] == first["id"]
    r = session.get(api(store, "/orders"), params={"modified_before": "2026-11-27T05:00:00"}, timeout=5)
    assert ids(r) == [second["id"]]


def test_put_merges_fields_and_cancels(catalog):
    store, session, items = catalog
    clock = store.test_clock
    order = new_order(
        session,
        store,
        set_paid=True,
        billing={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        line_items=[{"product_id": items["bolts"]["id"], "quantity": 1}],
        meta_data=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
    )
    clock.advance(minutes=5)
    meta_b = next(m for m in order["meta_data"] if m["key"] == "b")
    r = session.put(
        api(store, f"/orders/{order['id']}"),
        json={
            "billing": {"phone": "555-0100"},
            "meta_data": [
                {"key": "a", "value": "one"},
                {"id": meta_b["id"], "key": "b", "value": "two"},
                {"key": "c", "value": "3"},
            ],
            "customer_note": "ring twice",
        },
        timeout=5,
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["billing"] == {**order["billing"], "phone": "555-0100"}
    assert [(m["key"], m["value"]) for m in updated["meta_data"]] == [("a", "one"), ("b", "two"), ("c", "3")]
    assert updated["meta_data"][1]["id"] == meta_b["id"]
    assert updated["customer_note"] == "ring twice"
    assert (
        updated["date_modified"] == "2026-11-27T03:45:00" and updated["date_created"] == "2026-11-27T03:40:00"
    )
    assert updated["line_items"] == order["line_items"] and updated["total"] == order["total"]

    clock.advance(minutes=5)
    r = session.put(api(store, f"/orders/{order['id']}"), json={"status": "cancelled"}, timeout=5)
    assert r.json()["status"] == "cancelled" and r.json()["date_modified_gmt"] == "2026-11-27T03:50:00"
    assert store.get_order(order["id"])["status"] == "cancelled"
    r = session.put(api(store, "/orders/4242"), json={"status": "cancelled"}, timeout=5)
    assert r.status_code == 404


def test_put_line_items_update_add_and_remove(catalog):
    store, session, items = catalog
    order = new_order(
        session,
        store,
        line_items=[
            {"product_id": items["bolts"]["id"], "quantity": 1},
            {"name": "Custom", "sku": "CUSTOM-1", "total": "4.00"},
        ],
    )
    bolts, custom = order["line_items"]
    r = session.put(
        api(store, f"/orders/{order['id']}"),
        json={
            "line_items": [
                {"id": bolts["id"], "quantity": 3, "total": "28.50", "subtotal": "28.50"},
                {"id": custom["id"], "quantity": 0},
                {"variation_id": items["drill18"]["id"], "quantity": 1},
            ]
        },
        timeout=5,
    )
    assert r.status_code == 200
    lines = r.json()["line_items"]
    assert [(li["sku"], li["quantity"], li["total"]) for li in lines] == [
        ("BOLT-M6-100", 3, "28.50"),
        ("BOLT-DRILL-18V", 1, "129.00"),
    ]
    assert r.json()["total"] == "157.50"
    r = session.put(
        api(store, f"/orders/{order['id']}"), json={"line_items": [{"id": 999999, "quantity": 1}]}, timeout=5
    )
    assert r.status_code == 400 and r.json()["code"] == "woocommerce_rest_invalid_item_id"


def test_set_paid_on_update_and_completed_dates(woo):
    store, session = woo
    order = new_order(session, store)
    r = session.put(
        api(store, f"/orders/{order['id']}"), json={"set_paid": True, "transaction_id": "tx-1"}, timeout=5
    )
    assert (r.json()["status"], r.json()["transaction_id"]) == ("processing", "tx-1")
    assert r.json()["date_paid"] is not None
    done = store.set_status(order["id"], "completed")
    assert done["date_completed"] == done["date_completed_gmt"] is not None


def test_delete_order_trash_and_force(woo):
    store, session = woo
    order = new_order(session, store)
    r = session.delete(api(store, f"/orders/{order['id']}"), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "trash"
    assert session.get(api(store, "/orders"), timeout=5).json() == []
    assert [
        o["id"] for o in session.get(api(store, "/orders"), params={"status": "trash"}, timeout=5).json()
    ] == [order["id"]]
    assert session.delete(api(store, f"/orders/{order['id']}"), timeout=5).status_code == 410
    assert (
        session.delete(api(store, f"/orders/{order['id']}"), params={"force": "true"}, timeout=5).status_code
        == 200
    )
    assert store.get_order(order["id"]) is None


def test_python_api_update_order_stages_dates(woo):
    store, _ = woo
    order = store.create_order(billing={"first_name": "Ada"})
    staged = store.update_order(
        order["id"], date_created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), billing={"last_name": "L"}
    )
    assert staged["date_created"] == staged["date_created_gmt"] == "2026-01-02T03:04:05"
    assert staged["billing"]["first_name"] == "Ada" and staged["billing"]["last_name"] == "L"
    assert store.orders[0]["date_created"] == "2026-01-02T03:04:05"


# ---------------------------------------------------------------- shipment tracking


def test_shipment_tracking_routes_and_meta_mirror(woo):
    store, session = woo
    clock = store.test_clock
    order = new_order(session, store, set_paid=True, shipping={"postcode": "62701", "country": "US"})
    clock.advance(hours=2)
    base = tracking_api(store, f"/orders/{order['id']}/shipment-trackings")
    r = session.post(
        base,
        json={
            "tracking_provider": "USPS",
            "tracking_number": "9400111899560000000000",
            "date_shipped": "2026-11-26",
        },
        timeout=5,
    )
    assert r.status_code == 201
    usps = r.json()
    assert usps["tracking_provider"] == "USPS" and usps["tracking_number"] == "9400111899560000000000"
    assert usps["tracking_link"].endswith("9400111899560000000000") and usps["date_shipped"] == "2026-11-26"
    assert len(usps["tracking_id"]) == 32 and r.headers["Location"].endswith(usps["tracking_id"])
    r = session.post(
        base,
        json={
            "custom_tracking_provider": "Zed Freight",
            "tracking_number": "ZF-1",
            "custom_tracking_link": "https://zed.example/t/%1$s",
        },
        timeout=5,
    )
    custom = r.json()
    assert (custom["tracking_provider"], custom["tracking_link"]) == (
        "Zed Freight",
        "https://zed.example/t/ZF-1",
    )
    assert custom["date_shipped"] == "2026-11-27"  # today when omitted

    listed = session.get(base, timeout=5).json()
    assert [t["tracking_id"] for t in listed] == [usps["tracking_id"], custom["tracking_id"]]
    assert (
        session.get(f"{base}/{usps['tracking_id']}", timeout=5).json()["tracking_number"]
        == "9400111899560000000000"
    )

    mirrored = session.get(api(store, f"/orders/{order['id']}"), timeout=5).json()
    meta = next(m for m in mirrored["meta_data"] if m["key"] == TRACKING_META_KEY)
    assert [
        (t["tracking_provider"], t["custom_tracking_provider"], t["tracking_number"]) for t in meta["value"]
    ] == [("usps", "", "9400111899560000000000"), ("", "Zed Freight", "ZF-1")]
    assert meta["value"][0]["date_shipped"].isdigit()
    assert mirrored["date_modified"] == "2026-11-27T05:40:00"  # adding tracking bumps date_modified

    r = session.delete(f"{base}/{usps['tracking_id']}", timeout=5)
    assert r.status_code == 200 and r.json()["tracking_id"] == usps["tracking_id"]
    assert [t["tracking_id"] for t in session.get(base, timeout=5).json()] == [custom["tracking_id"]]
    assert session.get(f"{base}/{usps['tracking_id']}", timeout=5).status_code == 404
    assert session.post(base, json={"tracking_provider": "UPS"}, timeout=5).status_code == 400
    assert session.get(tracking_api(store, "/orders/4242/shipment-trackings"), timeout=5).status_code == 404


def test_tracking_providers_and_python_api(woo):
    store, session = woo
    order = store.create_order(set_paid=True)
    providers = session.get(
        tracking_api(store, f"/orders/{order['id']}/shipment-trackings/providers"), timeout=5
    ).json()
    assert "USPS" in providers["United States"]
    assert requests.get(tracking_api(store, "/shipment-trackings/providers"), timeout=5).status_code == 200
    item = store.add_tracking(order["id"], "Fedex", "7712", date_shipped="2026-11-20")
    assert item["tracking_provider"] == "Fedex" and "7712" in item["tracking_link"]
    other = store.add_tracking(order["id"], "Local Van", "LV-9", link="https://van.example/%1$s")
    assert other["tracking_link"] == "https://van.example/LV-9"
    assert [t["tracking_number"] for t in store.trackings(order["id"])] == ["7712", "LV-9"]
    assert store.state()["trackings"][str(order["id"])][0]["tracking_number"] == "7712"


# ---------------------------------------------------------------- rate limit and server integration


def test_rate_limit_answers_429_with_retry_after():
    store = WooStore("limited", KEY, SECRET, rate_limit_per_second=2)
    with StoreServer(store):
        session = requests.Session()
        session.auth = (KEY, SECRET)
        statuses = [session.post(api(store, "/orders"), json={}, timeout=5).status_code for _ in range(6)]
        assert statuses[:2] == [201, 201]
        assert 429 in statuses
        limited = next(e for e in store.log() if e["status"] == 429)
        assert limited["store_status"] == 429
        r = session.get(api(store, "/orders"), timeout=5)
        if r.status_code != 429:  # a token may have refilled meanwhile; exhaust again
            r = next(
                x
                for x in (session.get(api(store, "/orders"), timeout=5) for _ in range(5))
                if x.status_code == 429
            )
        assert r.json()["code"] == "woocommerce_rest_rate_limited" and int(r.headers["Retry-After"]) >= 1
        assert len(store.orders) == statuses.count(201) and len(store.writes()) == statuses.count(201)
        session.close()


def test_server_faults_use_woocommerce_error_shapes(woo):
    store, session = woo
    store.add_fault("POST /orders", "http_error", status=500)
    r = session.post(api(store, "/orders"), json={}, timeout=5)
    assert r.status_code == 500 and r.json()["code"] == "internal_server_error"
    store.add_fault("POST /orders", "error_body_200")
    r = session.post(api(store, "/orders"), json={}, timeout=5)
    assert r.status_code == 200 and r.json()["code"] == "internal_error"
    store.add_fault("POST /orders", "throttled", retry_after=2)
    r = session.post(api(store, "/orders"), json={}, timeout=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert r.json()["code"] == "woocommerce_rest_rate_limited"
    assert store.orders == []
    store.add_fault("POST /orders", "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(
            api(store, "/orders"), json={"meta_data": [{"key": "_ordersync_marker", "value": "x"}]}, timeout=5
        )
    assert [o["meta_data"][0]["value"] for o in store.orders] == ["x"]
    assert [e["operation"] for e in store.writes()] == ["POST /orders"]


def test_state_endpoint(catalog):
    store, session, _ = catalog
    store.create_order()
    state = requests.get(f"{store.url}/_sandbox/state", timeout=5).json()
    assert state["platform"] == "woocommerce" and [o["id"] for o in state["orders"]] == [5001]
    assert {p["sku"] for p in state["products"]} == {"BOLT-M6-100", "BOLT-DRILL", "BOLT-DRILL-18V"}


# ---------------------------------------------------------------- order notes

NOTE_FIELDS = {"id", "author", "date_created", "date_created_gmt", "note", "customer_note", "_links"}


def test_order_notes_create_list_read_and_delete_over_http(woo):
    store, session = woo
    order = new_order(session, store, status="processing")
    notes_url = api(store, f"/orders/{order['id']}/notes")
    # the store's own note of the status it was created in; no added_by_user in what the API shows
    [created] = session.get(notes_url, timeout=5).json()
    assert set(created) == NOTE_FIELDS
    assert created["note"] == "Order status changed from Pending payment to Processing."
    assert created["author"] == "WooCommerce" and created["customer_note"] is False
    assert created["date_created"] == created["date_created_gmt"] == "2026-11-27T03:40:00"

    store.test_clock.advance(minutes=5)
    r = session.post(
        notes_url, json={"note": "Packed, waiting for the carrier", "added_by_user": True}, timeout=5
    )
    assert r.status_code == 201, r.text
    packed = r.json()
    assert set(packed) == NOTE_FIELDS and packed["author"] == store.api_user_name == "Store Admin"
    assert packed["customer_note"] is False and packed["date_created"] == "2026-11-27T03:45:00"
    assert r.headers["Location"] == f"{notes_url}/{packed['id']}"
    assert packed["_links"] == {
        "self": [{"href": f"{notes_url}/{packed['id']}"}],
        "collection": [{"href": notes_url}],
        "up": [{"href": api(store, f"/orders/{order['id']}")}],
    }
    store.test_clock.advance(minutes=5)
    r = session.post(notes_url, json={"note": "Out of stock, sorry", "customer_note": "true"}, timeout=5)
    assert r.status_code == 201, r.text
    sorry = r.json()
    assert (
        sorry["customer_note"] is True and sorry["author"] == "WooCommerce"
    )  # not added_by_user: the store's

    # newest first; type filters on customer_note (sanitize_key lowercases it first)
    listed = session.get(notes_url, timeout=5)
    assert listed.status_code == 200 and "X-WP-Total" not in listed.headers
    assert [n["id"] for n in listed.json()] == [sorry["id"], packed["id"], created["id"]]
    assert [n["id"] for n in session.get(notes_url, params={"type": "CUSTOMER"}, timeout=5).json()] == [
        sorry["id"]
    ]
    internal = session.get(notes_url, params={"type": "internal"}, timeout=5).json()
    assert [n["id"] for n in internal] == [packed["id"], created["id"]]
    r = session.get(notes_url, params={"type": "private"}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "rest_invalid_param"
    assert r.json()["data"]["params"] == {"type": "type is not one of any, customer, internal."}

    # one note; notes are comments: the order is not modified
    assert session.get(f"{notes_url}/{packed['id']}", timeout=5).json() == packed
    assert store.get_order(order["id"])["date_modified"] == order["date_modified"]

    # delete: force required, as WooCommerce words it
    r = session.delete(f"{notes_url}/{packed['id']}", timeout=5)
    assert r.status_code == 501 and r.json() == {
        "code": "woocommerce_rest_trash_not_supported",
        "message": "Webhooks do not support trashing.",
        "data": {"status": 501},
    }
    r = session.delete(f"{notes_url}/{packed['id']}", params={"force": "true"}, timeout=5)
    assert r.status_code == 200 and r.json() == packed
    assert [n["id"] for n in store.notes(order["id"])] == [sorry["id"], created["id"]]
    r = session.get(f"{notes_url}/{packed['id']}", timeout=5)
    assert r.status_code == 404 and r.json()["code"] == "woocommerce_rest_invalid_id"
    assert r.json()["message"] == "Invalid resource ID."


def test_order_notes_errors(woo):
    store, session = woo
    order, other = new_order(session, store), new_order(session, store)
    notes_url = api(store, f"/orders/{order['id']}/notes")
    note = store.add_note(order["id"], "Call before delivery", author="Dana Cole")
    # an unknown order: the list's error code, then the other routes'
    r = session.get(api(store, "/orders/9999/notes"), timeout=5)
    assert r.status_code == 404 and r.json() == {
        "code": "woocommerce_rest_shop_order_invalid_id",
        "message": "Invalid order ID.",
        "data": {"status": 404},
    }
    for method, path in (
        ("POST", "/orders/9999/notes"),
        ("GET", f"/orders/9999/notes/{note['id']}"),
        ("DELETE", f"/orders/9999/notes/{note['id']}?force=true"),
    ):
        r = session.request(method, api(store, path), json={"note": "x"}, timeout=5)
        assert r.status_code == 404 and r.json()["code"] == "woocommerce_rest_order_invalid_id", (
            method,
            path,
        )
    # a note of another order, or none
    for path in (f"/orders/{other['id']}/notes/{note['id']}", f"/orders/{order['id']}/notes/999"):
        r = session.get(api(store, path), timeout=5)
        assert r.status_code == 404 and r.json()["code"] == "woocommerce_rest_invalid_id"
    r = session.delete(
        api(store, f"/orders/{other['id']}/notes/{note['id']}"), params={"force": 1}, timeout=5
    )
    assert r.status_code == 404 and r.json()["code"] == "woocommerce_rest_invalid_id"
    # argument validation
    r = session.post(notes_url, json={"customer_note": True}, timeout=5)
    assert r.status_code == 400 and r.json() == {
        "code": "rest_missing_callback_param",
        "message": "Missing parameter(s): note",
        "data": {"status": 400, "params": ["note"]},
    }
    for body, param in (
        ({"note": 5}, "note"),
        ({"note": "x", "customer_note": "maybe"}, "customer_note"),
        ({"note": "x", "added_by_user": [1]}, "added_by_user"),
    ):
        r = session.post(notes_url, json=body, timeout=5)
        assert (
            r.status_code == 400
            and r.json()["code"] == "rest_invalid_param"
            and param in r.json()["data"]["params"]
        )
    r = session.post(notes_url, json={"note": "x", "id": 3}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "woocommerce_rest_shop_order_exists"
    r = session.delete(f"{notes_url}/{note['id']}", params={"force": "perhaps"}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "rest_invalid_param"
    # the keys are needed, as for every resource
    r = requests.get(notes_url, timeout=5)
    assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_cannot_view"
    r = requests.post(notes_url, json={"note": "x"}, timeout=5)
    assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_cannot_create"
    assert store.notes(order["id"]) == [note] and store.notes(other["id"]) == []
    with pytest.raises(WooError) as missing:
        store.add_note(9999, "x")
    assert missing.value.status == 404 and missing.value.code == "woocommerce_rest_order_invalid_id"


def test_status_changes_leave_the_stores_own_notes(catalog):
    store, session, products = catalog
    order = new_order(session, store, line_items=[{"product_id": products["bolts"]["id"], "quantity": 2}])
    assert store.notes(order["id"]) == []  # created pending: no change
    session.put(api(store, f"/orders/{order['id']}"), json={"set_paid": True}, timeout=5)  # payment_complete
    session.put(api(store, f"/orders/{order['id']}"), json={"status": "processing"}, timeout=5)  # no change
    session.put(
        api(store, f"/orders/{order['id']}"), json={"status": "on-hold", "manual_update": True}, timeout=5
    )
    store.system_note_author = "system"  # the author the v3 schema (and WooCommerce's apps) describe
    store.set_status(order["id"], "completed")
    store.create_refund(order["id"], amount="19.00", api_refund=False)  # nothing left to refund: refunded
    notes = store.notes(order["id"])
    assert [(n["note"], n["author"], n["customer_note"]) for n in reversed(notes)] == [
        ("Order status changed from Pending payment to Processing.", "system", False),
        ("Order status changed from Processing to On hold.", "Store Admin", False),  # manual_update
        ("Order status changed from On hold to Completed.", "system", False),
        ("Order status changed from Completed to Refunded.", "system", False),
    ]
    r = session.put(api(store, f"/orders/{order['id']}"), json={"manual_update": "often"}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "rest_invalid_param"
    # a cancellation by the shop, then a note a person leaves to the customer
    cancelled = new_order(session, store, status="processing")
    store.cancel_order(cancelled["id"])
    store.add_note(cancelled["id"], "Out of stock, sorry", customer_note=True, author="Dana Cole")
    shown = session.get(api(store, f"/orders/{cancelled['id']}/notes"), timeout=5).json()
    assert [(n["note"], n["author"], n["customer_note"]) for n in shown] == [
        ("Out of stock, sorry", "Dana Cole", True),
        ("Order status changed from Processing to Cancelled.", "system", False),
        ("Order status changed from Pending payment to Processing.", "system", False),
    ]
    assert store.state()["notes"][str(cancelled["id"])] == shown
    # a forced delete takes the order's notes with it
    session.delete(api(store, f"/orders/{cancelled['id']}"), params={"force": "true"}, timeout=5)
    assert str(cancelled["id"]) not in store.state()["notes"]
    with pytest.raises(WooError):
        store.notes(cancelled["id"])


def test_order_notes_operations_faults_and_log(woo):
    store, session = woo
    order = new_order(session, store)
    notes_url = api(store, f"/orders/{order['id']}/notes")
    store.clear_log()
    note = session.post(notes_url, json={"note": "x"}, timeout=5).json()
    session.get(notes_url, timeout=5)
    session.get(f"{notes_url}/{note['id']}", timeout=5)
    session.delete(f"{notes_url}/{note['id']}", params={"force": "true"}, timeout=5)
    log = store.log()
    assert [(e["operation"], e["write"]) for e in log] == [
        ("POST /orders/{id}/notes", True),
        ("GET /orders/{id}/notes", False),
        ("GET /orders/{id}/notes/{id}", False),
        ("DELETE /orders/{id}/notes/{id}", True),
    ]
    assert [e["operation"] for e in store.writes()] == [
        "POST /orders/{id}/notes",
        "DELETE /orders/{id}/notes/{id}",
    ]
    store.add_fault("GET /orders/{id}/notes", "http_error", status=503)
    r = session.get(notes_url, timeout=5)
    assert r.status_code == 503 and r.json()["code"] == "service_unavailable"
    assert session.get(notes_url, timeout=5).json() == []  # one fault, used up
    store.add_fault("POST /orders/{id}/notes", "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(notes_url, json={"note": "kept though the answer was lost"}, timeout=5)
    assert [n["note"] for n in store.notes(order["id"])] == ["kept though the answer was lost"]
