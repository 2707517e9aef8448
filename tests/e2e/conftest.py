"""End-to-end harness: ``order_sync`` runs through Airflow (dag.test) against the sandbox stores over real HTTP."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest

from tests.support import ROOT, Receiver, fresh_postgres_url, postgres_available

ACME = "Acme Tools"  # Shopify vendor
BOLT = "Bolt Supply"  # WooCommerce vendor

BUYER = {
    "email": "jane.buyer@example.net",
    "phone": "+15550001111",
    "first": "Jane",
    "last": "Buyer",
    "address_phone": "+15550002222",
}
MERCHANT_CONTACT = {"name": "Market Place Ops", "email": "ops@marketplace.example", "phone": "+15559990000"}


class DecisionLog(logging.Handler):
    """Collects the ``ordersync`` log lines the tasks write."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def order_sync_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["order_sync"]


@pytest.fixture(scope="session")
def tracking_sync_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["tracking_sync"]


@dataclass
class RunResult:
    state: str
    lines: list[str]
    task_states: dict[str, list[str]] = field(default_factory=dict)
    tries: dict[str, list[int]] = field(default_factory=dict)  # try_number per task (per map index)

    def decisions(self, order_name: str, vendor: str | None = None) -> list[str]:
        needle = f"order {order_name} → vendor " + (repr(vendor) if vendor else "")
        return [line for line in self.lines if needle in line]

    def outcome(self, order_name: str, vendor: str) -> str:
        found = self.decisions(order_name, vendor)
        assert len(found) == 1, (
            f"expected one decision line for {order_name} → {vendor}, got {found}\n" + "\n".join(self.lines)
        )
        return found[0].split(": ", 1)[1].split(" — ", 1)[0]


class TrackingResult(RunResult):
    """tracking_sync's lines: ``tracking order #1001 → vendor 'Acme Tools' shipment <key>: <outcome> — <why>``."""

    def tracking(self, order_name: str, vendor: str) -> list[str]:
        needle = f"tracking order {order_name} → vendor {vendor!r} shipment "
        return [line for line in self.lines if needle in line]

    def outcomes(self, order_name: str, vendor: str) -> list[str]:
        return [line.split(": ", 1)[1].split(" — ", 1)[0] for line in self.tracking(order_name, vendor)]


def run_collecting(dag: Any, run_conf: dict[str, Any], result_type: type = RunResult) -> Any:
    """Run a DAG through dag.test with ``run_conf``, collecting the ``ordersync`` log lines its tasks write and
    each task's states and try numbers."""
    handler = DecisionLog()
    logger = logging.getLogger("ordersync")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        dag_run = dag.test(run_conf=run_conf)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    states: dict[str, list[str]] = {}
    tries: dict[str, list[int]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(getattr(ti.state, "value", ti.state)))
        tries.setdefault(ti.task_id, []).append(ti.try_number)
    return result_type(
        state=str(getattr(dag_run.state, "value", dag_run.state)),
        lines=handler.lines,
        task_states=states,
        tries=tries,
    )


class World:
    """A merchant store, one Shopify vendor (Acme Tools) and one WooCommerce vendor (Bolt Supply)."""

    def __init__(self, sandbox, dag, monkeypatch, ledger_url: str) -> None:
        self.sandbox = sandbox
        self.dag = dag
        self.monkeypatch = monkeypatch
        self.ledger_url = ledger_url
        self.merchant = sandbox.add_shopify("merchant", token="shpat_test_merchant_SECRET")
        self.acme = sandbox.add_shopify("acme", token="shpat_test_acme_SECRET")
        self.bolt = sandbox.add_woo("bolt", key="ck_test_bolt", secret="cs_test_bolt_SECRET")
        hammer = self.acme.add_product("Claw Hammer", sku="ACME-HAMMER", price="24.00")
        wrench = self.acme.add_product(
            "Wrench",
            variants=[
                {"sku": "ACME-WRENCH-S", "price": "18.00", "title": "S"},
                {"sku": "ACME-WRENCH-L", "price": "19.00", "title": "L"},
            ],
        )
        self.acme_variants = {v["sku"]: v["id"] for p in (hammer, wrench) for v in p["variants"]}
        self.bolt_bolts = self.bolt.add_product("M6 bolts x100", "BOLT-M6-100", price="9.50")
        drill = self.bolt.add_product("Drill", "BOLT-DRILL", price="129.00", type="variable")
        self.bolt_drill = self.bolt.add_variation(drill["id"], "BOLT-DRILL-18V", price="129.00")
        self.vendors = [
            {
                "vendor": ACME,
                "platform": "shopify",
                "conn_id": "ordersync_vendor_acme",
                "location_id": None,
                "enabled": True,
            },
            {
                "vendor": BOLT,
                "platform": "woocommerce",
                "conn_id": "ordersync_vendor_bolt",
                "location_id": None,
                "enabled": True,
            },
        ]
        for store, conn_id in (
            (self.merchant, "ordersync_merchant"),
            (self.acme, "ordersync_vendor_acme"),
            (self.bolt, "ordersync_vendor_bolt"),
        ):
            name, value = sandbox.connection_env(store, conn_id)
            monkeypatch.setenv(name, value)
        monkeypatch.setenv(
            "AIRFLOW_CONN_ORDERSYNC_LEDGER",
            json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": ledger_url}}),
        )
        self.set_vendors(self.vendors)
        self.settings()
        self._counter = 0

    # -- configuration ----------------------------------------------------------------------------------------
    def settings(self, **values: Any) -> None:
        if values:
            self.monkeypatch.setenv("AIRFLOW_VAR_ORDERSYNC_SETTINGS", json.dumps(values))
        else:
            self.monkeypatch.delenv("AIRFLOW_VAR_ORDERSYNC_SETTINGS", raising=False)

    def set_vendors(self, vendors: list[dict[str, Any]]) -> None:
        self.monkeypatch.setenv("AIRFLOW_VAR_ORDERSYNC_VENDORS", json.dumps(vendors))

    # -- merchant orders ----------------------------------------------------------------------------------------
    def order(
        self, lines: list[tuple[str | None, str | None, int, str]], status: str = "PAID", **fields: Any
    ) -> dict[str, Any]:
        """A merchant order; ``lines`` are (vendor, sku, quantity, unit price)."""
        self._counter += 1
        line_items = [
            {
                "title": f"{sku or 'Item'} title",
                "sku": sku,
                "vendor": vendor,
                "quantity": qty,
                "originalUnitPriceSet": {"shopMoney": {"amount": price, "currencyCode": "USD"}},
            }
            for vendor, sku, qty, price in lines
        ]
        address = {
            "firstName": BUYER["first"],
            "lastName": BUYER["last"],
            "address1": "1 Main St",
            "city": "Springfield",
            "provinceCode": "IL",
            "zip": "62701",
            "countryCodeV2": "US",
            "phone": BUYER["address_phone"],
        }
        base = {
            "displayFinancialStatus": status,
            "email": BUYER["email"],
            "phone": BUYER["phone"],
            "note": f"note {self._counter}",
            "tags": ["vip"],
            "currencyCode": "USD",
            "customer": {
                "firstName": BUYER["first"],
                "lastName": BUYER["last"],
                "defaultEmailAddress": {"emailAddress": BUYER["email"]},
                "defaultPhoneNumber": {"phoneNumber": BUYER["phone"]},
            },
            "shippingAddress": dict(address),
            "billingAddress": dict(address),
            "lineItems": line_items,
        }
        base.update(fields)
        return self.merchant.add_order(**base)

    # -- running ------------------------------------------------------------------------------------------------
    def _run_dag(self, dag: Any, result_type: type, conf: dict[str, Any]) -> Any:
        # Always the full conf: the session's DAG object must not carry one test's params into the next.
        return run_collecting(dag, {"order_ids": [], "vendors": [], "dry_run": False, **conf}, result_type)

    def with_task_retries(self, retries: int, delay_seconds: float = 1.0) -> None:
        """Give order_sync's tasks Airflow retries for this test (the tests' AIRFLOW_HOME has none), a short delay
        apart, so a test can tell a retried error from one that fails at once."""
        from datetime import timedelta

        for task in self.dag.tasks:
            self.monkeypatch.setattr(task, "retries", retries)
            self.monkeypatch.setattr(task, "retry_delay", timedelta(seconds=delay_seconds))
            self.monkeypatch.setattr(task, "retry_exponential_backoff", 0)

    def run(self, **conf: Any) -> RunResult:
        """Run order_sync."""
        return self._run_dag(self.dag, RunResult, conf)

    def run_tracking(self, **conf: Any) -> TrackingResult:
        """Run tracking_sync (needs the ``tracking_world`` fixture, which sets ``tracking_dag``)."""
        return self._run_dag(self.tracking_dag, TrackingResult, conf)

    def ledger(self):
        from ordersync.ledger import Ledger

        return Ledger(self.ledger_url)

    def last_run_key(self, dag_id: str = "order_sync") -> str:
        """The ledger's key (``dag_id/run_id``) of the newest run of ``dag_id`` that recorded a decision."""
        from sqlalchemy import select

        from ordersync.ledger import decisions

        with self.ledger().engine.connect() as conn:
            return conn.execute(
                select(decisions.c.run_id)
                .where(decisions.c.run_id.like(f"{dag_id}/%"))
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).scalar_one()

    # -- what the vendor stores received ------------------------------------------------------------------------
    def acme_orders(self) -> list[dict[str, Any]]:
        return list(self.acme.orders)

    def bolt_orders(self) -> list[dict[str, Any]]:
        return list(self.bolt.orders)

    def vendor_writes(self) -> list[dict[str, Any]]:
        return self.acme.writes() + self.bolt.writes()


@pytest.fixture
def sandbox():
    from ordersync_sandbox import Sandbox

    with Sandbox() as sb:
        yield sb


@pytest.fixture
def world(sandbox, order_sync_dag, monkeypatch, tmp_path) -> World:
    return World(sandbox, order_sync_dag, monkeypatch, f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture
def pg_world(sandbox, order_sync_dag, monkeypatch) -> World:
    import os

    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI must start it)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return World(sandbox, order_sync_dag, monkeypatch, fresh_postgres_url())


@pytest.fixture
def tracking_world(world, tracking_sync_dag) -> World:
    """``world`` that can also run tracking_sync (``world.run_tracking(**conf)``)."""
    world.tracking_dag = tracking_sync_dag
    return world


# -- alert receivers: a real HTTP endpoint and a real SMTP server on loopback ----------------------------------
@pytest.fixture
def receiver(world, monkeypatch):
    r = Receiver()
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORDERSYNC_ALERTS",
        json.dumps({"conn_type": "http", "host": r.url, "extra": {"X-Alert-Token": "hook-secret"}}),
    )
    yield r
    r.server.shutdown()


class Mailbox:
    """A real SMTP server (aiosmtpd) on loopback; ``messages`` are the parsed e-mails it accepted."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        messages = self.messages = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
                msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
                messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": msg})
                return "250 OK"

        from aiosmtpd.smtp import AuthResult, LoginPassword

        logins = self.logins = []

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                b"alerts",
                b"smtp-SECRET-pw",
            )
            logins.append(ok)
            return AuthResult(success=ok)

        import socket

        with socket.socket() as probe:  # aiosmtpd checks its own port on start: it needs a real one
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=False,
        )
        self.controller.start()

    def bodies(self) -> list[str]:
        out = []
        for m in self.messages:
            part = m["message"].get_body(preferencelist=("html", "plain"))
            out.append(part.get_content() if part is not None else "")
        return out

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def mailbox(world, monkeypatch):
    box = Mailbox()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": box.port,
                "login": "alerts",
                "password": "smtp-SECRET-pw",
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "ordersync@marketplace.example",
                    "timeout": 10,
                    "retry_limit": 1,
                },
            }
        ),
    )
    yield box
    box.stop()


def alert_settings(emails: list[str] | None = None, webhook: bool = True, **more: Any) -> dict[str, Any]:
    """``ordersync_settings`` with failure alerts to the mailbox and/or the receiver."""
    return {
        "failure_alerts": {
            "enabled": True,
            "emails": emails or [],
            "webhook_conn_id": "ordersync_alerts" if webhook else None,
        },
        **more,
    }
