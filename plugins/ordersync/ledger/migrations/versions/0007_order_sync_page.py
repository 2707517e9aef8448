"""The Order Sync page (issue 15): the merchant orders as last read, unmapped SKUs per held pair, read indexes.

* ``ordersync_merchant_orders``: one row per merchant order a run read (name, legacy id, statuses, the buyer's
  contact), upserted as the order is staged; the page shows it and masks the contact for read-only users.
* ``ordersync_vendor_orders.unmapped_skus``: the SKUs a pair held as ``unmapped`` waits on (JSON list), so the
  overview can say which SKUs to map and how many orders wait on each.
* Indexes that keep the page's reads on an index at a million vendor-order rows (scripts/page_benchmark.py):
  pairs by order name, by state (newest first), by vendor and state, by last change, by cancellation, by hold
  reason; decisions by time; alerts by order and vendor.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordersync_merchant_orders",
        sa.Column("merchant_order_id", sa.String(255), primary_key=True),
        sa.Column("merchant_order_name", sa.String(255), nullable=False),
        sa.Column("legacy_id", sa.String(64), nullable=False),
        sa.Column("financial_status", sa.String(32)),
        sa.Column("fulfillment_status", sa.String(32)),
        sa.Column("buyer_name", sa.String(255)),
        sa.Column("buyer_email", sa.String(255)),
        sa.Column("buyer_phone", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_ordersync_merchant_orders_merchant_order_name",
        "ordersync_merchant_orders",
        ["merchant_order_name"],
    )
    with op.batch_alter_table("ordersync_vendor_orders") as batch:
        batch.add_column(sa.Column("unmapped_skus", sa.Text))
    op.create_index("ix_ordersync_vendor_orders_name", "ordersync_vendor_orders", ["merchant_order_name"])
    op.create_index("ix_ordersync_vendor_orders_state", "ordersync_vendor_orders", ["state", "updated_at"])
    op.create_index("ix_ordersync_vendor_orders_vendor_state", "ordersync_vendor_orders", ["vendor", "state"])
    op.create_index("ix_ordersync_vendor_orders_updated", "ordersync_vendor_orders", ["updated_at"])
    op.create_index(
        "ix_ordersync_vendor_orders_cancel", "ordersync_vendor_orders", ["cancel_state", "updated_at"]
    )
    op.create_index(
        "ix_ordersync_vendor_orders_holds", "ordersync_vendor_orders", ["state", "hold_kind", "vendor"]
    )
    op.create_index("ix_ordersync_decisions_created", "ordersync_decisions", ["created_at"])
    op.create_index("ix_ordersync_alerts_order", "ordersync_alerts", ["merchant_order_name", "vendor"])


def downgrade() -> None:
    op.drop_index("ix_ordersync_alerts_order", "ordersync_alerts")
    op.drop_index("ix_ordersync_decisions_created", "ordersync_decisions")
    op.drop_index("ix_ordersync_vendor_orders_holds", "ordersync_vendor_orders")
    op.drop_index("ix_ordersync_vendor_orders_cancel", "ordersync_vendor_orders")
    op.drop_index("ix_ordersync_vendor_orders_updated", "ordersync_vendor_orders")
    op.drop_index("ix_ordersync_vendor_orders_vendor_state", "ordersync_vendor_orders")
    op.drop_index("ix_ordersync_vendor_orders_state", "ordersync_vendor_orders")
    op.drop_index("ix_ordersync_vendor_orders_name", "ordersync_vendor_orders")
    with op.batch_alter_table("ordersync_vendor_orders") as batch:
        batch.drop_column("unmapped_skus")
    op.drop_table("ordersync_merchant_orders")
