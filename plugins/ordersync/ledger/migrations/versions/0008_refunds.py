"""Refunds after the push (issue 17): ``ordersync_refunds``, one row per merchant refund and vendor order.

The row is written ``in_flight`` before the vendor store is asked and ``recorded`` with the vendor refund's id
after; its ``id`` makes the Shopify idempotency key, and a row found ``in_flight`` is looked up on the vendor
order (by the marker in the refund's note or reason) before anything is written again.

``ordersync_meta.refunds_synced_since``: when refunds began to be mirrored. A refund made before it, after the
vendor order was pushed, is not mirrored by the upgrade (the version before flagged it for a human, who may have
recorded it by hand): it is said ``manual`` once.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordersync_refunds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("merchant_order_id", sa.String(255), nullable=False),
        sa.Column("vendor", sa.String(255), nullable=False),
        sa.Column("merchant_refund_id", sa.String(255), nullable=False),
        sa.Column("merchant_order_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("vendor_refund_id", sa.String(255)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("key_generation", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("run_id", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "merchant_order_id", "vendor", "merchant_refund_id", name="uq_ordersync_refunds_part"
        ),
    )

    meta = sa.table("ordersync_meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.get_bind().execute(
        sa.insert(meta).values(
            key="refunds_synced_since", value=datetime.now(UTC).isoformat(timespec="seconds")
        )
    )


def downgrade() -> None:
    op.drop_table("ordersync_refunds")
    op.execute("DELETE FROM ordersync_meta WHERE key = 'refunds_synced_since'")
