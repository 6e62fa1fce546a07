"""Interrupts: the questions runs wait on, with their checkpoints.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interrupts",
        sa.Column("execute_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("node_title", sa.String(255), nullable=False),
        sa.Column("node_type", sa.String(32), nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("resumed_at", sa.Double, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("interrupts")
