"""The Order Sync page (issue 15) in the real Airflow API server: its JSON API and the operator's path in a browser.

A LocalExecutor stack of its own (``scripts/stack.py``: api-server, scheduler, dag-processor, the sandbox stores
with the demo orders; the session's CeleryExecutor stack pushes #1001/#1002 for the distributed test), with runs
triggered through Airflow's REST API before any test, so the ledger holds every kind of share:

* ``#1001`` (Acme + Bolt) made unpaid at the merchant first: both shares **held** (unpaid), until the browser
  test marks it paid and presses **Sync again**;
* ``#1002`` (Acme): **pushed**; ``#1004`` (Acme): **held** until its SKU ``ACME-SAW-X`` is mapped;
  ``#1005``: Bolt **pushed**, Zed Goods **skipped**;
* ``#1003`` (Bolt), paid, while Bolt's ``POST /orders`` answers ``400`` (sandbox fault): **failed**;
* ``#1006`` (Acme; a new order), while Acme's ``orderCreate`` connection drops before an answer (sandbox fault):
  **unknown** (the create may have happened);
* ``#9999``: an order ordersync never saw.

Logins are SimpleAuthManager's: ``admin`` (role admin) and ``viewer`` (role viewer: may read, may not edit or
trigger DAG runs). The browser test saves screenshots of the overview and of the order page as artifacts
(``ORDERSYNC_ARTIFACTS``, default ``artifacts/``).
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from tests.stack.conftest import _keep, require, stack_module
from tests.stack.test_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, _screenshot, _wait

pytestmark = pytest.mark.stack

ACME, BOLT, ZED = "Acme Tools", "Bolt Supply", "Zed Goods"
PUSHED, HELD, FAILED, UNKNOWN, UNPAID, NEVER = "#1002", "#1004", "#1003", "#1006", "#1001", "#9999"
MASK = "hidden: you may not edit DAG runs"
API = "/ordersync/api/v1"


def q(ref: str) -> str:
    return urllib.parse.quote(ref, safe="")


# ------------------------------------------------------------------------------------------------ the stack


def _add_acme_order(stack, name: str) -> dict:
    """A new paid merchant order for Acme only, its line copied from #1002 (a mapped Acme product)."""
    merchant = stack.stores["merchant"]
    template = merchant.get_order(PUSHED)
    li = template["lineItems"][0]
    line = {k: li[k] for k in ("title", "sku", "vendor", "originalUnitPriceSet") if li.get(k)}
    variant = li.get("variantId") or (li.get("variant") or {}).get("id")
    if variant:
        line["variantId"] = variant
    contact = {"firstName": "Kim", "lastName": "Lee", "email": "kim@example.com", "phone": "+15555550106"}
    return merchant.add_order(
        name=name,
        displayFinancialStatus="PAID",
        email=contact["email"],
        phone=contact["phone"],
        customer=contact,
        shippingAddress=template.get("shippingAddress"),
        billingAddress=template.get("billingAddress"),
        currencyCode="USD",
        lineItems=[{**line, "quantity": 1}],
    )


def _run(stack, order_ids: list[str]) -> tuple[str, str]:
    run_id = stack.trigger("order_sync", {"order_ids": order_ids, "dry_run": False})
    return run_id, stack.wait_for_run("order_sync", run_id, timeout=300)


@pytest.fixture(scope="module")
def page(request):
    failed_before = request.session.testsfailed
    running = stack_module.Stack(
        executor="local",
        # an interrupted create is looked up after 0.2 s, not 5 s: the "unknown" share's three cycles stay short
        extra_env={"ORDERSYNC_LOOKUP_DELAY_SECONDS": "0.2"},
    )
    try:
        running.start()
        merchant, acme, bolt = (running.stores[k] for k in ("merchant", "acme", "bolt"))
        # #1001 unpaid before any run: its first run holds both shares
        merchant.update_order(UNPAID, displayFinancialStatus="PENDING")
        run_id, state = _run(running, [UNPAID, PUSHED, HELD, "#1005"])
        assert state == "success", (run_id, running.task_instances("order_sync", run_id))
        # a failed and an unknown share: Bolt refuses every create (400), Acme's creates never get an answer
        merchant.update_order(FAILED, displayFinancialStatus="PAID")
        _add_acme_order(running, UNKNOWN)
        bolt.add_fault(match="POST /orders", kind="http_error", status=400, times=-1)
        acme.add_fault(match="orderCreate", kind="drop_before", times=-1)
        try:
            run_id, state = _run(running, [FAILED, UNKNOWN])
        finally:
            bolt.clear_faults()
            acme.clear_faults()
        assert state == "failed", run_id  # the push tasks fail for the failed shares: that is the point
    except BaseException:
        running.stop()
        _keep(running, "order-sync-page-start")
        running.cleanup()
        raise
    yield running
    running.stop()
    if request.session.testsfailed > failed_before:
        _keep(running, "order-sync-page")
    running.cleanup()


def get(stack, path: str, user: str = "admin", **kwargs):
    return stack.api("GET", path, check=False, user=user, **kwargs)


def order(stack, ref: str, user: str = "admin") -> dict:
    answer = get(stack, f"{API}/orders/{q(ref)}", user=user)
    assert answer.status_code == 200, answer.text
    return answer.json()


def shares(stack, ref: str) -> dict[str, dict]:
    return {s["vendor"]: s for s in order(stack, ref)["shares"]}


# ------------------------------------------------------------------------------------------------ the JSON API


def test_an_order_by_name_id_or_gid_for_a_pushed_held_failed_and_unknown_share_and_404_for_one_never_seen(
    page,
):
    pushed = order(page, PUSHED)
    assert pushed["merchant_order"]["name"] == PUSHED
    (acme,) = pushed["shares"]
    assert acme["vendor"] == ACME and acme["state"] == "pushed" and acme["reason"] == "created"
    assert acme["vendor_order_id"] and acme["vendor_order_name"] and acme["attempts"] == 1
    assert acme["last_error"] is None
    legacy = acme["vendor_order_id"].rsplit("/", 1)[-1]
    at_acme = page.stores["acme"].get_order(legacy)
    assert at_acme is not None and at_acme["name"] == acme["vendor_order_name"]  # the vendor order is real
    assert acme["vendor_order_url"].endswith(f"/admin/orders/{legacy}")
    assert (
        urllib.parse.urlparse(acme["vendor_order_url"]).netloc
        == urllib.parse.urlparse(page.stores["acme"].url).netloc
    )
    assert [d["outcome"] for d in acme["decisions"]] == ["pushed"]
    decision = acme["decisions"][0]
    assert set(decision) >= {"run_id", "at", "outcome", "reason"} and decision["run_id"].startswith(
        "manual__"
    )
    assert acme["shipments"] == [] and acme["refunds"] == []
    # the same order by numeric id and by GID
    assert (
        order(page, pushed["merchant_order"]["legacy_id"])["merchant_order"]["id"]
        == pushed["merchant_order"]["id"]
    )
    assert order(page, pushed["merchant_order"]["id"])["merchant_order"]["name"] == PUSHED

    held = shares(page, HELD)[ACME]
    assert held["state"] == "held" and held["hold_kind"] == "unmapped"
    assert "ACME-SAW-X" in held["reason"] and held["unmapped_skus"] == ["ACME-SAW-X"]
    assert held["vendor_order_id"] is None and held["vendor_order_url"] is None and held["attempts"] == 0

    unpaid = shares(page, UNPAID)
    assert {v: (s["state"], s["hold_kind"]) for v, s in unpaid.items()} in (
        {ACME: ("held", "unpaid"), BOLT: ("held", "unpaid")},
        {ACME: ("pushed", None), BOLT: ("pushed", None)},  # the browser test ran first
    )

    failed = shares(page, FAILED)[BOLT]
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert "HTTP 400" in failed["last_error"] and failed["vendor_order_id"] is None
    assert failed["suggestion"] and "order_sync" in failed["suggestion"]
    assert [d["outcome"] for d in failed["decisions"]] == ["failed"]

    unknown = shares(page, UNKNOWN)[ACME]
    assert unknown["state"] == "unknown" and unknown["attempts"] == 3  # three create cycles, none answered
    assert "connection dropped" in unknown["last_error"] and unknown["suggestion"]

    skipped = shares(page, "#1005")[ZED]
    assert skipped["state"] == "skipped" and "not in ordersync_vendors" in skipped["reason"]

    never = get(page, f"{API}/orders/{q(NEVER)}")
    assert never.status_code == 404 and NEVER in never.json()["detail"]
    assert get(page, f"{API}/orders/not-an-order").status_code == 404


def test_the_list_filters_by_state_vendor_and_name(page):
    def listed(**params):
        answer = get(page, f"{API}/orders", params=params)
        assert answer.status_code == 200, answer.text
        return [(s["merchant_order_name"], s["vendor"], s["state"]) for s in answer.json()["shares"]]

    everything = listed(limit=500)
    assert {
        (PUSHED, ACME, "pushed"),
        (HELD, ACME, "held"),
        (FAILED, BOLT, "failed"),
        (UNKNOWN, ACME, "unknown"),
    } <= set(everything)
    assert listed(q=PUSHED) == [(PUSHED, ACME, "pushed")]
    assert listed(q=HELD) == [(HELD, ACME, "held")]
    assert listed(q=FAILED) == [(FAILED, BOLT, "failed")]
    assert listed(q=UNKNOWN) == [(UNKNOWN, ACME, "unknown")]
    assert listed(q=NEVER) == []
    assert listed(state="failed") == [(FAILED, BOLT, "failed")]
    assert listed(state="unknown") == [(UNKNOWN, ACME, "unknown")]
    assert (HELD, ACME, "held") in listed(state="held", vendor=ACME)
    assert all(v == BOLT for _, v, _ in listed(vendor=BOLT))
    assert len(listed(limit=1)) == 1
    newest = get(page, f"{API}/orders", params={"limit": 500}).json()["shares"]
    stamps = [s["updated_at"] for s in newest]
    assert stamps == sorted(stamps, reverse=True)  # newest change first
    assert get(page, f"{API}/orders", params={"state": "lost"}).status_code == 400
    assert get(page, f"{API}/orders", params={"limit": 0}).status_code == 422


def test_the_overview_counts_holds_unmapped_skus_and_latest_failures(page):
    facts = get(page, f"{API}/overview").json()
    rows = get(page, f"{API}/orders", params={"limit": 500}).json()["shares"]
    for state, n in facts["totals"].items():
        assert n == sum(1 for r in rows if r["state"] == state), state
    assert (
        facts["totals"]["failed"] == 1 and facts["totals"]["unknown"] == 1 and facts["totals"]["skipped"] == 1
    )
    assert facts["vendors"][BOLT]["failed"] == 1 and facts["vendors"][ACME]["unknown"] == 1
    assert facts["held_by_reason"]["unmapped"] == {"total": 1, "vendors": {ACME: 1}}
    assert facts["unmapped_skus"] == {ACME: [{"sku": "ACME-SAW-X", "orders": 1}]}
    latest = {(f["merchant_order_name"], f["vendor"]): f for f in facts["latest_failures"]}
    assert set(latest) == {(FAILED, BOLT), (UNKNOWN, ACME)}
    assert all(f["suggestion"] for f in latest.values())
    assert len(facts["last_24h"]) == 24 and sum(h["failed"] for h in facts["last_24h"]) >= 1
    assert {d["dag_id"] for d in facts["dags"]} == {"order_sync", "tracking_sync"}
    order_sync = next(d for d in facts["dags"] if d["dag_id"] == "order_sync")
    assert order_sync["last_run"]["run_id"].startswith("manual__") and order_sync["paused"] is False


def test_sync_again_triggers_order_sync_with_the_order_and_refuses_an_order_never_seen(page):
    started = []
    for ref in (PUSHED, HELD, FAILED, UNKNOWN):
        answer = page.api(
            "POST", f"{API}/orders/{q(ref)}/sync", check=False, json={"dag": "order_sync", "dry_run": True}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["dag_id"] == "order_sync" and body["order"] == ref and body["dry_run"] is True
        assert body["url"].endswith("/dags/order_sync/runs/" + q(body["dag_run_id"]))
        started.append((ref, body["dag_run_id"]))
    by_id = page.api(
        "POST",
        f"{API}/orders/{q(order(page, HELD)['merchant_order']['legacy_id'])}/sync",
        check=False,
        json={"dag": "tracking_sync", "dry_run": True},
    )
    assert by_id.status_code == 200 and by_id.json()["order"] == HELD  # the run gets the order's name
    started_tracking = by_id.json()["dag_run_id"]
    never = page.api("POST", f"{API}/orders/{q(NEVER)}/sync", check=False, json={"dag": "order_sync"})
    assert never.status_code == 404
    wrong = page.api("POST", f"{API}/orders/{q(HELD)}/sync", check=False, json={"dag": "ordersync_webhooks"})
    assert wrong.status_code == 422
    for ref, run_id in started:
        run = page.api("GET", f"/api/v2/dags/order_sync/dagRuns/{q(run_id)}").json()
        assert run["conf"] == {"order_ids": [ref], "dry_run": True}
        assert run["run_type"] == "manual" and run["triggering_user_name"] == "admin"
    tracking = page.api("GET", f"/api/v2/dags/tracking_sync/dagRuns/{q(started_tracking)}").json()
    assert tracking["conf"] == {"order_ids": [HELD], "dry_run": True}
    # the runs end (a dry run writes nothing: the shares keep their states), before the browser test's own run
    for _, run_id in started:
        assert page.wait_for_run("order_sync", run_id, timeout=300) in ("success", "failed")
    page.wait_for_run("tracking_sync", started_tracking, timeout=300)
    assert shares(page, FAILED)[BOLT]["state"] == "failed" and shares(page, HELD)[ACME]["state"] == "held"


# ------------------------------------------------------------------------------------------------ login and roles


def _forged(stack) -> dict[str, str]:
    """Tokens that are not a login: garbage, a real token's claims signed with another secret, a real token
    (right secret) that expired, one with the signature cut off."""
    import jwt

    real = stack.token()
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    secret = stack.env["AIRFLOW__API_AUTH__JWT_SECRET"]
    expired = {
        **claims,
        "iat": int(time.time()) - 7200,
        "nbf": int(time.time()) - 7200,
        "exp": int(time.time()) - 3600,
    }
    return {
        "garbage": "not-a-token",
        "other secret": jwt.encode(claims, "x" * 64, algorithm=header["alg"]),
        "expired": jwt.encode(expired, secret, algorithm=header["alg"]),
        "unsigned": real.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(b"nope").decode().rstrip("="),
    }


API_CALLS = [
    ("GET", f"{API}/overview", None),
    ("GET", f"{API}/orders", None),
    ("GET", f"{API}/orders?state=held&vendor={q(ACME)}&q=%231&limit=5", None),
    ("GET", f"{API}/orders/{q(PUSHED)}", None),
    ("GET", f"{API}/orders/{q(NEVER)}", None),
    ("POST", f"{API}/orders/{q(HELD)}/sync", {"dag": "order_sync", "dry_run": True}),
]
PAGES = [
    "/ordersync/",
    f"/ordersync/orders?q={q(PUSHED)}",
    f"/ordersync/orders/{q(UNPAID)}",
    "/ordersync/orders?state=held",
]


def _runs(stack) -> int:
    return stack.api("GET", "/api/v2/dags/order_sync/dagRuns", params={"limit": 1}).json()["total_entries"]


def test_401_without_a_login_for_every_endpoint_and_page_with_no_data(page):
    runs_before = _runs(page)
    tokens = {"none": None, **_forged(page)}
    for label, token in tokens.items():
        for how in ("bearer", "cookie"):
            headers = {"Authorization": f"Bearer {token}"} if token and how == "bearer" else {}
            cookies = {"_token": token} if token and how == "cookie" else {}
            for method, path, body in API_CALLS:
                answer = requests.request(
                    method, page.url + path, headers=headers, cookies=cookies, json=body, timeout=30
                )
                assert answer.status_code == 401, (
                    label,
                    how,
                    method,
                    path,
                    answer.status_code,
                    answer.text[:200],
                )
                assert (
                    answer.json() == {"detail": answer.json()["detail"]}
                    and "log in" in answer.json()["detail"]
                )
            for path in PAGES:
                answer = requests.get(
                    page.url + path, headers=headers, cookies=cookies, timeout=30, allow_redirects=False
                )
                assert answer.status_code == 401, (label, how, path, answer.status_code)
                text = answer.text
                assert 'id="login-link"' in text and "/auth/login?next=" in text
                for secret in (
                    "Lovelace",
                    "ada@example.com",
                    "+15555550101",
                    'class="share"',
                    "data-count=",
                    "Acme Tools",
                ):
                    assert secret not in text, (label, path, secret)
            form = requests.post(
                page.url + f"/ordersync/orders/{q(HELD)}/sync",
                data={"dag": "order_sync", "dry_run": "true"},
                headers={**headers, "Origin": page.url},
                cookies=cookies,
                timeout=30,
                allow_redirects=False,
            )
            assert form.status_code == 401, (label, how, form.status_code)
    assert _runs(page) == runs_before  # nothing was triggered
    # the login itself: the page and the API answer with the UI's cookie as with a Bearer token
    cookie = {"_token": page.token()}
    assert requests.get(page.url + f"{API}/overview", cookies=cookie, timeout=30).status_code == 200
    assert requests.get(page.url + "/ordersync/", cookies=cookie, timeout=30).status_code == 200


def test_a_read_only_user_sees_the_buyer_masked_and_may_not_sync_again(page):
    admin = order(page, PUSHED)
    viewer = order(page, PUSHED, user="viewer")
    assert admin["contact_visible"] is True and viewer["contact_visible"] is False
    assert admin["merchant_order"]["buyer"] == {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "phone": "+15555550102",
    }
    assert viewer["merchant_order"]["buyer"]["name"] == "Grace Hopper"
    assert (
        MASK in viewer["merchant_order"]["buyer"]["email"]
        and MASK in viewer["merchant_order"]["buyer"]["phone"]
    )
    assert viewer["shares"] == admin["shares"]  # everything else is the same
    assert "grace@example.com" not in json.dumps(viewer)
    for path in (f"{API}/orders?limit=500", f"{API}/overview"):
        assert "@example.com" not in get(page, path, user="viewer").text

    # the HTML page: masked for the viewer, shown to the admin; the viewer's Sync again is disabled
    cookies = {"_token": page.token("viewer")}
    html = requests.get(page.url + f"/ordersync/orders/{q(PUSHED)}", cookies=cookies, timeout=30)
    assert html.status_code == 200
    assert "grace@example.com" not in html.text and "+15555550102" not in html.text and MASK in html.text
    assert 'id="sync-again-button" disabled' in html.text and "read-only" in html.text
    shown = requests.get(
        page.url + f"/ordersync/orders/{q(PUSHED)}", cookies={"_token": page.token()}, timeout=30
    )
    assert "grace@example.com" in shown.text and "+15555550102" in shown.text

    runs_before = _runs(page)
    for dag in ("order_sync", "tracking_sync"):
        refused = page.api(
            "POST", f"{API}/orders/{q(HELD)}/sync", check=False, user="viewer", json={"dag": dag}
        )
        assert refused.status_code == 403, refused.text
        assert "viewer" in refused.json()["detail"]
    form = requests.post(
        page.url + f"/ordersync/orders/{q(HELD)}/sync",
        data={"dag": "order_sync"},
        headers={"Origin": page.url},
        cookies=cookies,
        timeout=30,
        allow_redirects=False,
    )
    assert form.status_code == 403
    # and a form POST carried by the admin's cookie from another site is refused too
    cross = requests.post(
        page.url + f"/ordersync/orders/{q(HELD)}/sync",
        data={"dag": "order_sync"},
        headers={"Origin": "http://elsewhere.example"},
        cookies={"_token": page.token()},
        timeout=30,
        allow_redirects=False,
    )
    assert cross.status_code == 403
    assert _runs(page) == runs_before


def test_the_openapi_schema_describes_the_api(page):
    schema = requests.get(page.url + "/ordersync/openapi.json", timeout=30).json()
    assert {"/api/v1/orders", "/api/v1/orders/{ref}", "/api/v1/orders/{ref}/sync", "/api/v1/overview"} <= set(
        schema["paths"]
    )
    assert "401" in schema["paths"]["/api/v1/orders/{ref}"]["get"]["responses"]


# ------------------------------------------------------------------------------------------------ the browser


@pytest.fixture
def chromium(page):
    require(
        Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
        f"Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='ordersync-chromium-')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.mark.browser
def test_an_operator_finds_a_held_order_fixes_it_and_syncs_it_again_from_the_order_sync_page(page, chromium):
    from selenium.webdriver.common.by import By

    browser = chromium

    def one(css):
        return lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None)

    # log in (SimpleAuthManager's login page)
    browser.get(page.url + "/")
    _wait(browser, "the login form", one("input[name=username]")).send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(page.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, "the home page after login", lambda d: "/auth/login" not in d.current_url)

    # Order Sync from the navigation: the UI frames the page at /plugin/ordersync
    entry = _wait(
        browser,
        "the Order Sync entry in the navigation",
        lambda d: next(
            (
                e
                for e in d.find_elements(
                    By.XPATH,
                    "//*[self::a or self::button][@aria-label='Order Sync' or normalize-space(.)='Order Sync']",
                )
                if e.is_displayed()
            ),
            None,
        ),
    )
    entry.click()
    assert entry.get_attribute("href").endswith("/plugin/ordersync")
    _wait(
        browser,
        "the plugin's route",
        lambda d: urllib.parse.urlparse(d.current_url).path.startswith("/plugin/ordersync"),
    )
    frame = _wait(browser, "the Order Sync frame", one("iframe"))
    assert frame.get_attribute("src").rstrip("/").endswith("/ordersync")
    browser.switch_to.frame(frame)

    # the overview's counts are the ledger's
    totals = get(page, f"{API}/overview").json()["totals"]
    _wait(browser, "the overview's counts", one("[data-count=held]"))
    shown = {s: int(browser.find_element(By.CSS_SELECTOR, f"[data-count={s}]").text) for s in totals}
    assert shown == totals and shown["held"] >= 3 and shown["failed"] == 1
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "ACME-SAW-X" in body and "unpaid" in body and FAILED in body  # SKUs to map, holds, latest failures
    _screenshot(browser, "order-sync-overview")

    # search #1001: one match opens the order page
    search = browser.find_element(By.ID, "order-search")
    search.send_keys(UNPAID)
    browser.find_element(By.ID, "order-search-go").click()
    _wait(browser, "the order page", lambda d: d.find_element(By.ID, "order-name").text.startswith(UNPAID))
    # the order page is at the order's numeric id (the UI's frame would turn a %23 in its path into a fragment)
    legacy = order(page, UNPAID)["merchant_order"]["legacy_id"]
    assert browser.execute_script("return location.pathname") == f"/ordersync/orders/{legacy}"
    browser.switch_to.default_content()
    assert urllib.parse.urlparse(browser.current_url).path == f"/plugin/ordersync/ordersync/orders/{legacy}"
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))

    def share(vendor):
        return browser.find_element(By.CSS_SELECTOR, f"section.share[data-vendor='{vendor}']")

    for vendor in (ACME, BOLT):
        held = share(vendor)
        assert held.get_attribute("data-state") == "held"
        assert held.find_element(By.CSS_SELECTOR, "[data-share-state]").text == "held"
        reason = held.find_element(By.CSS_SELECTOR, "[data-reason]").text
        assert "PENDING, not PAID" in reason and "pushed once paid" in reason
        assert not held.find_elements(By.CSS_SELECTOR, "a.vendor-order-link")
    assert browser.find_element(By.ID, "buyer-email").text == "ada@example.com"  # admin sees the contact

    # the cause, fixed in the sandbox: the buyer paid
    page.stores["merchant"].update_order(UNPAID, displayFinancialStatus="PAID")

    # Sync again (order_sync, not a dry run): the page follows the run and reloads when it ends
    assert browser.find_element(By.ID, "sync-dag").get_attribute("value") == "order_sync"
    assert not browser.find_element(By.ID, "sync-dry-run").is_selected()
    browser.find_element(By.ID, "sync-again-button").click()
    notice = _wait(browser, "the triggered run's notice", one("#triggered"))
    run_id = notice.get_attribute("data-run")
    assert notice.get_attribute("data-dag") == "order_sync" and run_id.startswith("manual__")
    run = page.api("GET", f"/api/v2/dags/order_sync/dagRuns/{q(run_id)}").json()
    assert run["conf"] == {"order_ids": [UNPAID], "dry_run": False} and run["triggering_user_name"] == "admin"
    assert page.wait_for_run("order_sync", run_id, timeout=300) == "success"
    _wait(
        browser,
        "the page to reload with the run's end",
        lambda d: (
            "done=success" in d.execute_script("return location.search")
            and d.find_element(By.ID, "triggered-state").text == "success"
        ),
        timeout=60,
    )

    # both shares pushed, each with the link to its vendor order in the vendor's admin
    ledger = shares(page, UNPAID)
    for vendor in (ACME, BOLT):
        pushed = share(vendor)
        assert pushed.get_attribute("data-state") == "pushed", vendor
        link = pushed.find_element(By.CSS_SELECTOR, "a.vendor-order-link")
        assert link.text == ledger[vendor]["vendor_order_name"]
        assert link.get_attribute("href") == ledger[vendor]["vendor_order_url"]
        assert run_id in pushed.text  # the decision's run
    acme_id = ledger[ACME]["vendor_order_id"].rsplit("/", 1)[-1]
    assert (
        share(ACME)
        .find_element(By.CSS_SELECTOR, "a.vendor-order-link")
        .get_attribute("href")
        .endswith(f"/admin/orders/{acme_id}")
    )
    assert page.stores["acme"].get_order(acme_id) is not None  # the vendor order exists in the vendor's store
    assert f"post={ledger[BOLT]['vendor_order_id']}" in share(BOLT).find_element(
        By.CSS_SELECTOR, "a.vendor-order-link"
    ).get_attribute("href")
    shot = _screenshot(browser, "order-sync-order-1001")
    assert shot.stat().st_size > 10_000
