"""The ledger's tables as the code reads and writes them (SQLAlchemy Core).

The database gets them through the Alembic revisions in ``migrations/versions``; a test compares a migrated
ledger with this metadata, so a column added here without a revision fails the suite.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

VERSION_TABLE = (
    "ordersync_alembic_version"  # not Airflow's alembic_version: the ledger may share its database
)

metadata = MetaData()

meta_table = Table(
    "ordersync_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
watermarks = Table(
    "ordersync_watermarks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
sku_map = Table(
    "ordersync_sku_map",
    metadata,
    Column("vendor", String(255), primary_key=True),
    Column("sku", String(255), primary_key=True),
    Column("product_id", String(255), nullable=False),
    Column("variant_id", String(255)),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
)
vendor_orders = Table(
    "ordersync_vendor_orders",
    metadata,
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
    Column("unmapped_skus", Text),  # JSON list of the SKUs a pair held as unmapped waits on (0007)
    # the Order Sync page (0007): an order found by name; the overview's counts, holds and latest failures
    Index("ix_ordersync_vendor_orders_name", "merchant_order_name"),
    Index("ix_ordersync_vendor_orders_state", "state", "updated_at"),
    Index("ix_ordersync_vendor_orders_vendor_state", "vendor", "state"),
    Index("ix_ordersync_vendor_orders_updated", "updated_at"),
    Index("ix_ordersync_vendor_orders_cancel", "cancel_state", "updated_at"),
    Index("ix_ordersync_vendor_orders_holds", "state", "hold_kind", "vendor"),
)
# The merchant orders ordersync read (0007), as last read: what the Order Sync page shows of the order itself,
# the buyer's contact included (masked there for users who may not edit DAG runs).
merchant_orders = Table(
    "ordersync_merchant_orders",
    metadata,
    Column("merchant_order_id", String(255), primary_key=True),
    Column("merchant_order_name", String(255), nullable=False, index=True),
    Column("legacy_id", String(64), nullable=False),
    Column("financial_status", String(32)),
    Column("fulfillment_status", String(32)),
    Column("buyer_name", String(255)),
    Column("buyer_email", String(255)),
    Column("buyer_phone", String(64)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),  # the store's updatedAt when last read
    Column("seen_at", DateTime(timezone=True), nullable=False),
)
shipments = Table(
    "ordersync_shipments",
    metadata,
    Column("vendor", String(255), primary_key=True),
    Column("vendor_order_id", String(255), primary_key=True),
    Column("vendor_shipment_key", String(255), primary_key=True),  # Shopify fulfilment GID / Woo tracking_id
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
decisions = Table(
    "ordersync_decisions",
    metadata,
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
    Index("ix_ordersync_decisions_created", "created_at"),  # the page's last-24-hours chart (0007)
)
alerts_table = Table(
    "ordersync_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(255), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("merchant_order_name", String(255), nullable=False),
    Column("vendor", String(255), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("suggestion", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_ordersync_alerts_order", "merchant_order_name", "vendor"),  # a failure's suggested fix (0007)
)
alert_deliveries = Table(
    "ordersync_alert_deliveries",
    metadata,
    Column("run_id", String(255), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("items", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
run_orders = Table(
    "ordersync_run_orders",
    metadata,
    Column("run_id", String(255), primary_key=True),
    Column("merchant_order_id", String(255), primary_key=True),
    Column("merchant_order_name", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("payload", Text, nullable=False),
    Column("staged_at", DateTime(timezone=True), nullable=False),
)
# tracking_sync's run scratch: vendor orders whose shipments need the merchant (write_merchant_fulfillments).
run_shipments = Table(
    "ordersync_run_shipments",
    metadata,
    Column("run_id", String(255), primary_key=True),
    Column("vendor", String(255), primary_key=True),
    Column("vendor_order_id", String(255), primary_key=True),
    Column("merchant_order_id", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the ShippedOrder as the vendor task read it
    Column("staged_at", DateTime(timezone=True), nullable=False),
    Column("error", Text),  # why the writer could not finish it (the row then stays until the run's summary)
)
# Webhook deliveries the receiver accepted (ordersync.events.inbox): one row per event, whatever the retries.
webhook_inbox = Table(
    "ordersync_webhook_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "conn_id", String(255), nullable=False
    ),  # the store it came from (ordersync_merchant or a vendor's)
    Column(
        "dedup_key", String(255), nullable=False
    ),  # Shopify X-Shopify-Event-Id; WooCommerce id@date_modified
    Column("dag_id", String(64), nullable=False),  # the DAG it wakes: order_sync | tracking_sync
    Column("topic", String(64), nullable=False),
    Column(
        "order_id", String(255), nullable=False
    ),  # merchant order GID, or the vendor order's id at its store
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(255)),  # the run that took it (dag_id/run_id)
    Column("claimed_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("outcome", String(16)),  # handled (by an event run) | reconciled (by a scheduled run) | not_ours
    UniqueConstraint("conn_id", "dedup_key", name="uq_ordersync_webhook_inbox_event"),
    Index("ix_ordersync_webhook_inbox_pending", "dag_id", "done_at", "claimed_by"),
)

# One row per (merchant order, vendor, merchant refund): the refund's part mirrored on that vendor order,
# bracketed like a create (in_flight -> recorded; a row left in_flight is looked up at the vendor first).
refunds = Table(
    "ordersync_refunds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the Shopify idempotency key's number
    Column("merchant_order_id", String(255), nullable=False),
    Column("vendor", String(255), nullable=False),
    Column("merchant_refund_id", String(255), nullable=False),
    Column("merchant_order_name", String(255), nullable=False),
    # in_flight | recorded | failed | manual (platform cannot, or reported) | skipped (sync_refunds off) |
    # before_push (the vendor order was created without the refunded units)
    Column("state", String(16), nullable=False),
    Column("vendor_refund_id", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("key_generation", Integer, nullable=False, default=0),  # moved on by a refused attempt
    Column("detail", Text),  # what it records: lines, quantities, restock, shipping, amount
    Column("last_error", Text),
    Column("run_id", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("merchant_order_id", "vendor", "merchant_refund_id", name="uq_ordersync_refunds_part"),
)

TABLES = (
    meta_table,
    watermarks,
    sku_map,
    vendor_orders,
    merchant_orders,
    decisions,
    shipments,
    alerts_table,
    alert_deliveries,
    run_orders,
    webhook_inbox,
    run_shipments,
    refunds,
)
