"""The Sandbox facade, the demo seed and the ``python -m ordersync_sandbox serve`` command."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import ordersync_sandbox
from ordersync_sandbox import Fault, Sandbox, WooStore
from ordersync_sandbox.base import BaseStore, Request, Response
from ordersync_sandbox.seed import env_lines, seed_demo

SANDBOX_DIR = Path(ordersync_sandbox.__file__).resolve().parent.parent


class PingStore(BaseStore):
    platform = "fake"

    def operation_of(self, request: Request) -> str:
        return "ping"

    def is_write(self, request: Request) -> bool:
        return False

    def handle(self, request: Request) -> Response:
        return Response.json(200, {"pong": self.name})


def _free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive free ports after it (best effort)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65535:
            continue
        try:
            for offset in range(size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    pytest.skip("no block of free ports")


def test_context_manager_starts_and_stops_servers():
    with Sandbox() as sb:
        bolt = sb.add_woo("bolt", key="ck_x", secret="cs_y")
        ping = sb.add_store(PingStore("ping"))
        assert isinstance(bolt, WooStore) and sb.stores["bolt"] is bolt and sb.stores["ping"] is ping
        assert bolt.url.startswith("http://127.0.0.1:") and bolt.url != ping.url
        assert requests.get(f"{ping.url}/", timeout=5).json() == {"pong": "ping"}
        assert requests.get(f"{bolt.url}/wp-json/wc/v3/orders", auth=("ck_x", "cs_y"), timeout=5).json() == []
        with pytest.raises(ValueError):
            sb.add_woo("bolt", key="k", secret="s")
        urls = [bolt.url, ping.url]
    for url in urls:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url, timeout=2)


def test_start_stop_without_context_manager_and_restart():
    sb = Sandbox().start()
    try:
        store = sb.add_store(PingStore("p"))
        assert requests.get(store.url, timeout=5).status_code == 200
        sb.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(store.url, timeout=2)
        sb.start()
        assert requests.get(store.url, timeout=5).status_code == 200
    finally:
        sb.stop()


def test_port_base_assigns_consecutive_ports():
    base = _free_port_block(2)
    with Sandbox(port_base=base) as sb:
        first = sb.add_store(PingStore("one"))
        second = sb.add_store(PingStore("two"))
        assert (first.url, second.url) == (f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}")


def test_connection_env_for_woocommerce():
    with Sandbox() as sb:
        bolt = sb.add_woo("bolt", key="ck_x", secret="cs_y")
        name, value = Sandbox.connection_env(bolt, "ordersync_vendor_bolt")
        assert name == "AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT"
        assert json.loads(value) == {
            "conn_type": "http",
            "host": bolt.url,
            "login": "ck_x",
            "password": "cs_y",
        }
        assert sb.connection_env(bolt, "x") == ("AIRFLOW_CONN_X", value)
    with pytest.raises(ValueError):
        Sandbox.connection_env(PingStore("nourl"), "x")


def test_connection_env_for_shopify_and_lazy_export():
    from ordersync_sandbox import ShopifyStore

    with Sandbox() as sb:
        merchant = sb.add_shopify("merchant", token="shpat_m")
        assert isinstance(merchant, ShopifyStore) and sb.stores["merchant"] is merchant
        assert merchant.url.startswith("http://127.0.0.1:")
        name, value = sb.connection_env(merchant, "ordersync_merchant")
        assert name == "AIRFLOW_CONN_ORDERSYNC_MERCHANT"
        assert json.loads(value) == {
            "conn_type": "http",
            "host": merchant.url,
            "password": "shpat_m",
            "extra": {"api_version": "2026-10"},
        }


def test_fault_is_exported_and_usable_through_the_store():
    with Sandbox() as sb:
        bolt = sb.add_woo("bolt", key="k", secret="s")
        fault = bolt.add_fault("GET /orders", "http_error", status=503)
        assert isinstance(fault, Fault)
        assert requests.get(f"{bolt.url}/wp-json/wc/v3/orders", auth=("k", "s"), timeout=5).status_code == 503
        sb.clear_logs()
        assert bolt.log() == []


def test_seed_demo_builds_stores_catalogues_orders_and_env():
    with Sandbox() as sb:
        info = seed_demo(sb)
        merchant, acme, bolt = (info["stores"][k] for k in ("merchant", "acme", "bolt"))
        assert (merchant.platform, acme.platform, bolt.platform) == ("shopify", "shopify", "woocommerce")
        assert info["vendors"] == [
            {
                "vendor": "Acme Tools",
                "platform": "shopify",
                "conn_id": "ordersync_vendor_acme",
                "location_id": None,
                "enabled": True,
            },
            {
                "vendor": "Bolt Supply",
                "platform": "woocommerce",
                "conn_id": "ordersync_vendor_bolt",
                "location_id": None,
                "enabled": True,
            },
        ]
        env = info["env"]
        assert set(env) == {
            "AIRFLOW_CONN_ORDERSYNC_MERCHANT",
            "AIRFLOW_CONN_ORDERSYNC_VENDOR_ACME",
            "AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT",
            "AIRFLOW_VAR_ORDERSYNC_VENDORS",
        }
        assert json.loads(env["AIRFLOW_VAR_ORDERSYNC_VENDORS"]) == info["vendors"]
        assert json.loads(env["AIRFLOW_CONN_ORDERSYNC_VENDOR_ACME"])["password"] == "shpat_demo_acme"
        assert json.loads(env["AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT"])["login"] == "ck_demo_bolt"

        acme_skus = {v["sku"]: v["price"] for p in acme.products for v in p["variants"]}
        assert acme_skus == {"ACME-HAMMER": "24.00", "ACME-WRENCH-S": "18.00", "ACME-WRENCH-L": "18.00"}
        wrench = next(p for p in acme.products if len(p["variants"]) == 2)
        assert {v["sku"] for v in wrench["variants"]} == {"ACME-WRENCH-S", "ACME-WRENCH-L"}
        bolt_skus = {p["sku"]: (p["type"], p["price"]) for p in bolt.products}
        assert bolt_skus["BOLT-M6-100"] == ("simple", "9.50")
        assert bolt_skus["BOLT-DRILL-18V"] == ("variation", "129.00")

        orders = {o["name"]: o for o in merchant.orders}
        assert sorted(orders) == ["#1001", "#1002", "#1003", "#1004", "#1005"]
        vendors = {name: {li["vendor"] for li in o["lineItems"]} for name, o in orders.items()}
        assert vendors == {
            "#1001": {"Acme Tools", "Bolt Supply"},
            "#1002": {"Acme Tools"},
            "#1003": {"Bolt Supply"},
            "#1004": {"Acme Tools"},
            "#1005": {"Bolt Supply", "Zed Goods"},
        }
        status = {name: o["displayFinancialStatus"] for name, o in orders.items()}
        assert status == {
            "#1001": "PAID",
            "#1002": "PAID",
            "#1003": "PENDING",
            "#1004": "PAID",
            "#1005": "PAID",
        }
        assert "ACME-SAW-X" in {li["sku"] for li in orders["#1004"]["lineItems"]}
        assert "ACME-SAW-X" not in acme_skus
        assert orders["#1001"]["shippingAddress"]["countryCodeV2"] == "US"
        assert orders["#1001"]["customer"]["defaultEmailAddress"]["emailAddress"] == "ada@example.com"

        # the Woo vendor answers with the demo credentials over HTTP
        r = requests.get(
            f"{bolt.url}/wp-json/wc/v3/products",
            params={"sku": "BOLT-DRILL-18V"},
            auth=("ck_demo_bolt", "cs_demo_bolt"),
            timeout=5,
        )
        assert r.json()[0]["type"] == "variation"


def test_env_lines_are_shell_quoted():
    lines = env_lines({"A": '{"x": "it\'s"}', "B": "plain"})
    assert lines == ['A=\'{"x": "it\'"\'"\'s"}\'', "B='plain'"]
    assert [shlex.split(line)[0] for line in lines] == ['A={"x": "it\'s"}', "B=plain"]


def test_cli_serve_demo_writes_env_and_stops_on_sigterm(tmp_path):
    env_file = tmp_path / "sandbox.env"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SANDBOX_DIR), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordersync_sandbox", "serve", "--demo", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        while not env_file.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the sandbox did not write its env file"
            time.sleep(0.05)
        values = dict(shlex.split(line)[0].split("=", 1) for line in env_file.read_text().splitlines())
        assert json.loads(values["AIRFLOW_VAR_ORDERSYNC_VENDORS"])[1]["vendor"] == "Bolt Supply"
        bolt = json.loads(values["AIRFLOW_CONN_ORDERSYNC_VENDOR_BOLT"])
        assert bolt["host"].startswith("http://127.0.0.1:")
        r = requests.get(
            f"{bolt['host']}/wp-json/wc/v3/products",
            auth=(bolt["login"], bolt["password"]),
            params={"sku": "BOLT-M6-100"},
            timeout=5,
        )
        assert r.status_code == 200 and r.json()[0]["price"] == "9.50"
        state = requests.get(f"{bolt['host']}/_sandbox/state", timeout=5).json()
        assert state["platform"] == "woocommerce"
        merchant = json.loads(values["AIRFLOW_CONN_ORDERSYNC_MERCHANT"])
        assert len(requests.get(f"{merchant['host']}/_sandbox/state", timeout=5).json()["orders"]) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.splitlines() == env_file.read_text().splitlines()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(bolt["host"], timeout=2)
