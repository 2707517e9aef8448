"""The ledger's schema through Alembic, on SQLite and PostgreSQL: a fresh ledger, ledgers from before Alembic
(hand-versioned v1 to v4) upgraded in place with their rows, one written by a newer ordersync refused."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, insert, inspect, select, text, update

from ordersync.ledger import Ledger, meta_table, vendor_orders
from ordersync.ledger import migrate as migrations
from ordersync.ledger.schema import VERSION_TABLE, metadata

BASELINE = migrations.MIGRATIONS / "versions" / "0004_baseline.py"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _baseline_module():
    spec = importlib.util.spec_from_file_location("ordersync_ledger_baseline", BASELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hand_versioned_v4(url: str) -> Ledger:
    """A ledger as ordersync wrote it before Alembic: the v4 tables, ``ordersync_meta.schema_version`` 4 and a
    pushed (order, vendor) row; no Alembic version table."""
    v4 = MetaData()
    _baseline_module().v4_tables(v4)
    ledger = Ledger(url)
    v4.create_all(ledger.engine)
    with ledger.engine.begin() as conn:
        conn.execute(insert(v4.tables["ordersync_meta"]).values(key="schema_version", value="4"))
        conn.execute(
            insert(v4.tables["ordersync_vendor_orders"]).values(
                merchant_order_id="gid://shopify/Order/5",
                vendor="Acme",
                merchant_order_name="#1005",
                state="pushed",
                vendor_order_id="gid://shopify/Order/1",
                vendor_order_name="#1",
                attempts=1,
                updated_at=NOW,
                fingerprint="f" * 64,
            )
        )
        conn.execute(
            insert(v4.tables["ordersync_watermarks"]).values(
                name="merchant_orders", value=NOW.isoformat(), updated_at=NOW
            )
        )
    assert not inspect(ledger.engine).has_table(VERSION_TABLE)
    return ledger


def _schema_differences(ledger: Ledger) -> list:
    """What Alembic's autogenerate would change to make the database match the code's tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with ledger.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return compare_metadata(context, metadata)


def _columns(ledger: Ledger) -> dict[str, set[str]]:
    found = inspect(ledger.engine)
    return {name: {c["name"] for c in found.get_columns(name)} for name in sorted(found.get_table_names())}


def _added_after_v4() -> dict[str, set[str]]:
    """Tables the revisions after the baseline add (0005: the webhook inbox; 0006: tracking's run scratch;
    0007: the merchant orders the Order Sync page shows; 0008: the refunds mirrored on vendor orders)."""
    return {
        name: {c.name for c in metadata.tables[name].columns}
        for name in (
            "ordersync_webhook_inbox",
            "ordersync_run_shipments",
            "ordersync_merchant_orders",
            "ordersync_refunds",
        )
    }


def _expected_after_upgrade(v4_columns: dict[str, set[str]]) -> dict[str, set[str]]:
    """A v4 ledger's columns once at head: the tables added after v4, and 0007's column on the pairs."""
    expected = {**v4_columns, **_added_after_v4(), VERSION_TABLE: {"version_num"}}
    expected["ordersync_vendor_orders"] = expected["ordersync_vendor_orders"] | {"unmapped_skus"}
    return expected


def test_a_fresh_ledger_is_at_head_and_matches_the_code(ledger_url):
    ledger = Ledger(ledger_url)
    assert ledger.schema_version() is None
    assert ledger.migrate() == migrations.head() == "0008"
    assert ledger.schema_version() == migrations.head()
    assert _schema_differences(ledger) == []
    assert ledger.migrate() == migrations.head()  # idempotent
    with ledger.engine.connect() as conn:
        version = select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        assert conn.execute(version).scalar_one() == "4"  # pre-Alembic readers still agree
    assert ledger.refunds.synced_since() is not None  # 0008: when refunds began to be mirrored


def test_a_hand_versioned_v4_ledger_is_stamped_and_upgraded_in_place(ledger_url):
    ledger = _hand_versioned_v4(ledger_url)
    before = ledger.dump()
    assert ledger.migrate() == migrations.head()
    assert ledger.schema_version() == migrations.head()
    assert _schema_differences(ledger) == []
    after = ledger.dump()
    added = [r for r in after["ordersync_meta"] if r["key"] == "refunds_synced_since"]  # 0008 adds this one
    assert len(added) == 1
    after["ordersync_meta"] = [r for r in after["ordersync_meta"] if r not in added]
    for table, rows in before.items():  # every row kept, unchanged (a column added since is empty)
        kept = [{k: row[k] for k in old} for row, old in zip(after[table], rows, strict=True)]
        assert kept == rows, table
        assert all(v is None for row, old in zip(after[table], rows) for k, v in row.items() if k not in old)
    pair = ledger.pairs(["gid://shopify/Order/5"])[("gid://shopify/Order/5", "Acme")]
    assert pair.state == "pushed" and pair.vendor_order_id == "gid://shopify/Order/1"
    assert pair.fingerprint == "f" * 64
    assert ledger.watermark("merchant_orders") == NOW


@pytest.mark.parametrize(
    "version, drop",
    [
        (
            "1",
            {
                "columns": [
                    "fingerprint",
                    "synced_fields",
                    "line_fingerprint",
                    "manual_fingerprint",
                    "cancel_state",
                    "cancelled_at",
                ],
                "tables": ["ordersync_shipments", "ordersync_alerts", "ordersync_alert_deliveries"],
                "decision_columns": True,
            },
        ),
        (
            "2",
            {
                "columns": [],
                "tables": ["ordersync_shipments", "ordersync_alerts", "ordersync_alert_deliveries"],
                "decision_columns": True,
            },
        ),
        (
            "3",
            {
                "columns": [],
                "tables": ["ordersync_alerts", "ordersync_alert_deliveries"],
                "decision_columns": True,
            },
        ),
    ],
)
def test_older_hand_versioned_ledgers_reach_head_in_place(ledger_url, version, drop):
    ledger = _hand_versioned_v4(ledger_url)
    fresh_columns = _columns(ledger)
    with ledger.engine.begin() as conn:  # take away what that version did not have yet
        for name in drop["tables"]:
            conn.execute(text(f"DROP TABLE {name}"))
        for name in drop["columns"]:
            conn.execute(text(f"ALTER TABLE ordersync_vendor_orders DROP COLUMN {name}"))
        if drop["decision_columns"]:
            for name in ("operation", "subject"):
                conn.execute(text(f"ALTER TABLE ordersync_decisions DROP COLUMN {name}"))
        conn.execute(update(meta_table).values(value=version))
    assert ledger.migrate() == migrations.head()
    assert _columns(ledger) == _expected_after_upgrade(fresh_columns)
    assert _schema_differences(ledger) == []
    with ledger.engine.connect() as conn:
        assert conn.execute(select(vendor_orders.c.vendor_order_name)).scalar_one() == "#1"


def test_a_ledger_from_a_newer_ordersync_is_refused_untouched(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    with ledger.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(migrations.LedgerTooNew, match="revision 0099 is newer than this ordersync"):
        ledger.migrate()
    assert ledger.schema_version() == "0099"


def test_a_hand_versioned_ledger_from_a_newer_ordersync_is_refused(ledger_url):
    ledger = _hand_versioned_v4(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(update(meta_table).values(value="5"))
    with pytest.raises(migrations.LedgerTooNew, match="schema version 5 is newer"):
        ledger.migrate()
    assert not inspect(ledger.engine).has_table(VERSION_TABLE)
