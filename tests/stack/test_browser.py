"""The operator's path through the Airflow UI, in the machine's headless Debian Chromium.

Log in, open ``order_sync``, trigger it from the Trigger Dag form with ``order_ids`` and ``dry_run``, wait
for the run to succeed, open the push task's log and find the decision line for the order. A screenshot
of the log page is saved as a test artifact (``ORDERSYNC_ARTIFACTS``, default ``artifacts/``).

Selenium drives ``/usr/bin/chromium`` through ``/usr/bin/chromedriver`` (Debian packages
``chromium chromium-driver``; ``.ci/run`` installs them); nothing is downloaded.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.stack.conftest import artifacts_dir, require

pytestmark = [pytest.mark.stack, pytest.mark.browser]

CHROMIUM = os.environ.get("ORDERSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ORDERSYNC_CHROMEDRIVER", "/usr/bin/chromedriver")
# Debian's Chromium as root on a machine with no network but loopback: no sandbox, no background traffic.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
# #1004 (Acme: held until mapped) and #1005 (Bolt: pushed; Zed Goods: skipped). The distributed test
# pushes #1001 and #1002, so the two tests never see each other's orders.
ORDERS = ["#1004", "#1005"]
LINE = "[dry run] order #1005 → vendor 'Bolt Supply': pushed — would create the vendor order"


@pytest.fixture
def browser(stack):
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
    profile = tempfile.mkdtemp(prefix="ordersync-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _wait(driver, what: str, found, timeout: float = 60):
    """Poll ``found(driver)`` until it returns something truthy; on timeout save a screenshot and fail."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = found(driver)
            if value:
                return value
        except Exception:  # the page is still rendering (stale or missing elements)
            pass
        if time.monotonic() > deadline:
            shot = _screenshot(driver, "browser-timeout")
            pytest.fail(
                f"timed out after {timeout:.0f}s waiting for {what} (at {driver.current_url}; "
                f"screenshot {shot})"
            )
        time.sleep(0.5)


def _screenshot(driver, name: str) -> Path:
    path = artifacts_dir() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    driver.save_screenshot(str(path))
    print(f"\nscreenshot: {path}")
    return path


def test_trigger_from_the_ui_and_read_the_decision_line_in_the_task_log(stack, browser):
    from selenium.webdriver.common.by import By

    def one(css):
        return lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None)

    # log in (SimpleAuthManager's login page)
    browser.get(stack.url + "/")
    _wait(browser, "the login form", one("input[name=username]")).send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(stack.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, "the home page after login", lambda d: "/auth/login" not in d.current_url)

    # open order_sync and its Trigger Dag form
    browser.get(stack.url + "/dags/order_sync")
    _wait(browser, "the Trigger button", one("[data-testid=trigger-dag-button]")).click()
    order_ids = _wait(browser, "the order_ids field of the form", one("textarea#element_order_ids"))
    order_ids.send_keys("\n".join(ORDERS))  # an array param: one string per line
    dry_run = browser.find_element(By.CSS_SELECTOR, "input[name=element_dry_run]")
    if not dry_run.is_selected():
        browser.execute_script("arguments[0].click()", dry_run)  # Chakra's switch hides the checkbox
    _wait(browser, "dry_run switched on", lambda d: dry_run.is_selected(), timeout=5)
    browser.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]").click()

    # the UI opens the new run; its id is in the address
    path = _wait(
        browser,
        "the new run's page",
        lambda d: (
            urllib.parse.urlparse(d.current_url).path if "/dags/order_sync/runs/" in d.current_url else None
        ),
    )
    run_id = urllib.parse.unquote(path.split("/runs/", 1)[1].split("/", 1)[0])
    run = stack.api("GET", f"/api/v2/dags/order_sync/dagRuns/{run_id}").json()
    assert run["run_type"] == "manual"
    assert run["conf"]["order_ids"] == ORDERS and run["conf"]["dry_run"] is True

    # the run succeeds (the run page shows it)
    state = stack.wait_for_run("order_sync", run_id, timeout=300)
    assert state == "success", [
        (t["task_id"], t["map_index"], t["state"]) for t in stack.task_instances("order_sync", run_id)
    ]
    browser.refresh()
    _wait(
        browser,
        "the run page to show Success",
        lambda d: "Success" in d.find_element(By.TAG_NAME, "body").text,
    )

    # open the push task's log for the vendor that has the order (map index shows the vendor's name)
    bolt = next(
        ti
        for ti in stack.task_instances("order_sync", run_id)
        if ti["task_id"] == "push_vendor_orders" and ti["rendered_map_index"] == "Bolt Supply"
    )
    browser.get(
        f"{stack.url}/dags/order_sync/runs/{urllib.parse.quote(run_id, safe='')}"
        f"/tasks/push_vendor_orders/mapped/{bolt['map_index']}"
    )
    _wait(
        browser,
        "the decision line in the task log",
        lambda d: LINE in d.find_element(By.TAG_NAME, "body").text,
        timeout=90,
    )
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Bolt Supply" in body  # the mapped task is labelled with the vendor
    assert len(stack.stores["bolt"].orders) == 0 or all(  # a dry run writes nothing
        m["value"] != "#1005"
        for o in stack.stores["bolt"].orders
        for m in o["meta_data"]
        if m["key"] == "_ordersync_merchant_order"
    )
    shot = _screenshot(browser, "order_sync-push-log")
    assert shot.stat().st_size > 10_000
