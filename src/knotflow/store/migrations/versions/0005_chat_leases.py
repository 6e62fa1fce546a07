"""Chats in progress (a lease on the conversation), conversation names, answers cut short.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("running_chat", ID, nullable=True))
    op.add_column("conversations", sa.Column("running_until", sa.Double, nullable=True))
    op.add_column("messages", sa.Column("incomplete", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "conversation_names",
        sa.Column("space_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("space_id", "app_id", "connector_id", "name", name="pk_conversation_names"),
    )


def downgrade() -> None:
    op.drop_table("conversation_names")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("incomplete")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("running_until")
        batch.drop_column("running_chat")
