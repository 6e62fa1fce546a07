"""Conversations and their messages (chatflows: workflows.chat).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", ID, nullable=False),
        sa.Column("space_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("meta_data", sa.Text, nullable=False),
        sa.Column("creator_id", ID, nullable=False),
        sa.Column("pending_event", sa.String(80), nullable=True),
        sa.Column("pending_workflow", ID, nullable=True),
        sa.Column("pending_kind", sa.Integer, nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name="fk_conversations_space_id_spaces"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_table(
        "messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("chat_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("content_type", ID, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_conversation_chat", "messages", ["conversation_id", "chat_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_chat", table_name="messages")
    op.drop_table("messages")
    op.drop_table("conversations")
