"""The flavor a queue was placed by, so a flavor in use can be told.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("flavor", sa.String(64), nullable=True))
    op.create_index("ix_queues_flavor", "queues", ["flavor"])


def downgrade() -> None:
    op.drop_index("ix_queues_flavor", "queues")
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("flavor")
