"""Bring a ledger database to this ordersync's schema with Alembic (``validate_settings`` runs it every run).

* an empty database: every revision from the baseline on;
* a ledger from before Alembic (``ordersync_meta.schema_version`` 1 to 4, no version table): the baseline
  brings it to v4 in place and stamps it, then the later revisions run;
* a ledger written by a newer ordersync (a revision this code does not know): refused, nothing changed.

Runs in one transaction; on PostgreSQL an advisory lock makes concurrent runs (order_sync and tracking_sync
start together) take turns.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, Engine

from ordersync.ledger.schema import VERSION_TABLE, meta_table

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LAST_HAND_VERSIONED = 4  # ordersync_meta.schema_version of the Alembic baseline


class LedgerTooNew(RuntimeError):
    """The ledger was written by a newer ordersync."""


def _config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this ordersync knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


def current(connection: Connection) -> str | None:
    """The ledger's Alembic revision, or None (empty, or from before Alembic)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def _legacy_version(connection: Connection) -> int | None:
    inspector = inspect(connection)
    if not inspector.has_table("ordersync_vendor_orders"):
        return None
    if not inspector.has_table(meta_table.name):
        return 1
    row = connection.execute(select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
    return int(row[0]) if row else 1


def upgrade(engine: Engine) -> str:
    """Upgrade the ledger to :func:`head`; returns that revision."""
    from alembic import command
    from alembic.script import ScriptDirectory

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('ordersync_ledger_migrate'))"))
        found = current(connection)
        if found is None:
            legacy = _legacy_version(connection)
            if legacy is not None and legacy > LAST_HAND_VERSIONED:
                raise LedgerTooNew(
                    f"ledger schema version {legacy} is newer than this ordersync ({LAST_HAND_VERSIONED})"
                )
        elif found not in {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}:
            raise LedgerTooNew(
                f"ledger schema revision {found} is newer than this ordersync ({head()}): "
                "upgrade ordersync, or point it at another ledger"
            )
        command.upgrade(_config(connection), "head")
        return current(connection) or ""
