"""The webhook inbox: one row per store event the receiver accepted (issue 13, event-driven sync).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordersync_webhook_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conn_id", sa.String(255), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("dag_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16)),
        sa.UniqueConstraint("conn_id", "dedup_key", name="uq_ordersync_webhook_inbox_event"),
    )
    op.create_index(
        "ix_ordersync_webhook_inbox_pending", "ordersync_webhook_inbox", ["dag_id", "done_at", "claimed_by"]
    )


def downgrade() -> None:
    op.drop_index("ix_ordersync_webhook_inbox_pending", table_name="ordersync_webhook_inbox")
    op.drop_table("ordersync_webhook_inbox")
