"""tracking_sync's run scratch: vendor orders whose shipments need the merchant store (issue 14).

The vendor tasks read their stores in parallel and stage here what needs a merchant read or write; one task,
``write_merchant_fulfillments``, then spends the merchant's cost bucket alone. A row left after the writer is a
vendor order it could not finish: that vendor's watermark stays, so the next run reads it again.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordersync_run_shipments",
        sa.Column("run_id", sa.String(255), primary_key=True),
        sa.Column("vendor", sa.String(255), primary_key=True),
        sa.Column("vendor_order_id", sa.String(255), primary_key=True),
        sa.Column("merchant_order_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("ordersync_run_shipments")
