"""Pools, flavors and the queue registry.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("uri", sa.String(255), nullable=False, unique=True),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("flavor", sa.String(64), nullable=True),
        sa.Column("options", sa.Text, nullable=False),
    )
    op.create_table(
        "flavors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("capabilities", sa.Text, nullable=False),
    )
    op.create_table(
        "queues",
        sa.Column("project", sa.String(256), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("pool", sa.String(64), sa.ForeignKey("pools.name"), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_queues_pool", "queues", ["pool"])


def downgrade() -> None:
    op.drop_table("queues")
    op.drop_table("flavors")
    op.drop_table("pools")
