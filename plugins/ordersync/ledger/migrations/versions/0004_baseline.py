"""Baseline: the ledger as schema v4, the last hand-versioned schema (``ordersync_meta.schema_version``).

Frozen: later schema changes are new revisions, never edits here. It is written to be run on any ledger
without the Alembic version table: an empty database gets every table; a ledger from before Alembic (schema
v1 to v4) gets the tables and columns its version lacked, in place, rows kept, and is stamped at this revision.

Revision ID: 0004
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

revision = "0004"
down_revision = None
branch_labels = None
depends_on = None

LEGACY_VERSION = 4


def v4_tables(meta: MetaData) -> None:
    """The v4 tables, as they were when ordersync versioned its schema by hand."""
    Table(
        "ordersync_meta",
        meta,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    Table(
        "ordersync_watermarks",
        meta,
        Column("name", String(128), primary_key=True),
        Column("value", String(64), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "ordersync_sku_map",
        meta,
        Column("vendor", String(255), primary_key=True),
        Column("sku", String(255), primary_key=True),
        Column("product_id", String(255), nullable=False),
        Column("variant_id", String(255)),
        Column("refreshed_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "ordersync_vendor_orders",
        meta,
        Column("merchant_order_id", String(255), primary_key=True),
        Column("vendor", String(255), primary_key=True),
        Column("merchant_order_name", String(255), nullable=False),
        Column(
            "state", String(16), nullable=False
        ),  # held | skipped | queued | in_flight | unknown | failed | pushed
        Column("hold_kind", String(32)),  # unpaid | unmapped (held); history | fulfilled (skipped)
        Column("reason", Text),
        Column("marker", String(255)),
        Column("vendor_order_id", String(255)),
        Column("vendor_order_name", String(255)),
        Column("attempts", Integer, nullable=False, default=0),
        Column("first_attempt_at", DateTime(timezone=True)),
        Column("last_attempt_at", DateTime(timezone=True)),
        Column("last_error", Text),
        Column("pushed_at", DateTime(timezone=True)),
        Column("run_id", String(255)),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        # order lifecycle
        Column("fingerprint", String(64)),  # synced order-level fields as last written to the vendor
        Column("synced_fields", Text),  # those fields as JSON, to name what changed
        Column("line_fingerprint", String(64)),  # the vendor's line items as pushed
        Column("manual_fingerprint", String(64)),  # line items as last flagged for manual handling
        Column("cancel_state", String(16)),  # cancelled | refused
        Column("cancelled_at", DateTime(timezone=True)),
    )
    Table(
        "ordersync_shipments",
        meta,
        Column("vendor", String(255), primary_key=True),
        Column("vendor_order_id", String(255), primary_key=True),
        Column(
            "vendor_shipment_key", String(255), primary_key=True
        ),  # Shopify fulfilment GID / Woo tracking_id
        Column("merchant_order_id", String(255), nullable=False, index=True),
        Column("merchant_order_name", String(255), nullable=False),
        Column("merchant_fulfillment_id", String(255)),
        Column("fingerprint", String(64)),  # tracking (company, numbers, URLs) as last written
        Column("tracking", Text),  # that tracking as JSON, to name what changed
        Column("state", String(16), nullable=False),  # in_flight | written | failed
        Column("error", Text),
        Column("attempts", Integer, nullable=False, default=0),
        Column("first_attempt_at", DateTime(timezone=True)),
        Column("written_at", DateTime(timezone=True)),
        Column("run_id", String(255)),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "ordersync_decisions",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(255), nullable=False, index=True),
        Column("merchant_order_id", String(255), nullable=False, index=True),
        Column("merchant_order_name", String(255), nullable=False),
        Column("vendor", String(255), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("reason", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("operation", String(16), nullable=True),  # create | update | cancel | tracking
        Column("subject", String(255), nullable=True),  # the shipment key of a tracking decision
    )
    Table(
        "ordersync_alerts",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(255), nullable=False, index=True),
        Column("kind", String(32), nullable=False),
        Column("merchant_order_name", String(255), nullable=False),
        Column("vendor", String(255), nullable=False),
        Column("operation", String(32), nullable=False),
        Column("message", Text, nullable=False),
        Column("suggestion", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "ordersync_alert_deliveries",
        meta,
        Column("run_id", String(255), primary_key=True),
        Column("channel", String(32), primary_key=True),
        Column("items", Integer, nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "ordersync_run_orders",
        meta,
        Column("run_id", String(255), primary_key=True),
        Column("merchant_order_id", String(255), primary_key=True),
        Column("merchant_order_name", String(255), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("payload", Text, nullable=False),
        Column("staged_at", DateTime(timezone=True), nullable=False),
    )


def upgrade() -> None:
    bind = op.get_bind()
    meta = MetaData()
    v4_tables(meta)
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in meta.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:  # v1 lacked the lifecycle columns, v3 the decision operation
            if column.name not in have:
                op.add_column(table.name, Column(column.name, column.type, nullable=True))
    version = meta.tables["ordersync_meta"]
    found = bind.execute(sa.select(version.c.value).where(version.c.key == "schema_version")).first()
    if found is None:
        bind.execute(sa.insert(version).values(key="schema_version", value=str(LEGACY_VERSION)))
    elif found[0] != str(LEGACY_VERSION):
        bind.execute(
            sa.update(version).where(version.c.key == "schema_version").values(value=str(LEGACY_VERSION))
        )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not downgraded: restore the ledger from a backup instead")
