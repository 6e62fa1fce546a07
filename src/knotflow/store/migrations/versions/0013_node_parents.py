"""Where a node execution ran: the composite node (Loop, Batch, Sub-workflow) it ran inside, and the iteration or
item it ran for (Coze's loop_index / batch_index). Both null for a node of the workflow itself.

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("node_executions", sa.Column("parent_node_id", sa.String(64), nullable=True))
    op.add_column("node_executions", sa.Column("iteration", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_executions") as batch:
        batch.drop_column("iteration")
        batch.drop_column("parent_node_id")
