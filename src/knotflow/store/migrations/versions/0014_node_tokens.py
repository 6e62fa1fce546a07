"""The tokens a node execution's model calls used (LLM, Intent, Question nodes), as Coze Studio's trace shows
them per node. Both null for a node that called no model, and for executions recorded before.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("node_executions", sa.Column("input_tokens", sa.Integer, nullable=True))
    op.add_column("node_executions", sa.Column("output_tokens", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_executions") as batch:
        batch.drop_column("output_tokens")
        batch.drop_column("input_tokens")
