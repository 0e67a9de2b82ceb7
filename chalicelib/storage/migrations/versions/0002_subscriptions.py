"""Subscriptions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(256), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("subscriber", sa.String(1024), nullable=False),
        sa.Column("ttl", sa.Integer, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("connection", sa.String(128), nullable=True),
        sa.UniqueConstraint("project", "queue", "subscriber", name="uq_subscriptions_subscriber"),
    )
    op.create_index("ix_subscriptions_scope", "subscriptions", ["project", "queue", "id"])
    op.create_index("ix_subscriptions_connection", "subscriptions", ["connection"])
    op.create_index("ix_subscriptions_expires", "subscriptions", ["expires"])


def downgrade() -> None:
    op.drop_table("subscriptions")
