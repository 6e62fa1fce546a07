"""Conversations and messages as the open API manages them (bot, sections, deletion, message metadata), apps'
conversation templates, and bots' and apps' tables (Coze's databases).

Existing conversations keep their id as their first section's id (what chats reported as `section_id` so far).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("bot_id", ID, nullable=False, server_default=""))
    op.add_column("conversations", sa.Column("section_id", ID, nullable=False, server_default=""))
    op.add_column("conversations", sa.Column("deleted_at", sa.Double, nullable=True))
    op.execute("UPDATE conversations SET section_id = id")
    op.create_index("ix_conversations_space_bot", "conversations", ["space_id", "bot_id", "connector_id",
                                                                     "created_at"])
    op.add_column("messages", sa.Column("section_id", ID, nullable=False, server_default=""))
    op.add_column("messages", sa.Column("bot_id", ID, nullable=False, server_default=""))
    op.add_column("messages", sa.Column("meta_data", sa.Text, nullable=False, server_default="{}"))
    op.add_column("messages", sa.Column("updated_at", sa.Double, nullable=False, server_default="0"))
    op.add_column("messages", sa.Column("deleted_at", sa.Double, nullable=True))
    op.execute("UPDATE messages SET section_id = conversation_id, updated_at = created_at")
    op.create_index("ix_messages_conversation_created", "messages", ["conversation_id", "created_at"])
    op.create_table(
        "conversation_templates",
        sa.Column("id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_templates"),
        sa.UniqueConstraint("app_id", "name", name="uq_conversation_templates_app_name"),
    )
    op.create_table(
        "database_tables",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("rw_mode", sa.Integer, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("physical_name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_database_tables"),
        sa.UniqueConstraint("physical_name", name="uq_database_tables_physical_name"),
        sa.UniqueConstraint("owner_kind", "owner_id", "name", name="uq_database_tables_owner_name"),
    )


def downgrade() -> None:
    # The rows of every bot's and app's table go with their definitions.
    for (physical,) in op.get_bind().execute(sa.text("SELECT physical_name FROM database_tables")).all():
        op.drop_table(str(physical))
    op.drop_table("database_tables")
    op.drop_table("conversation_templates")
    op.drop_index("ix_messages_conversation_created", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in ("deleted_at", "updated_at", "meta_data", "bot_id", "section_id"):
            batch.drop_column(column)
    op.drop_index("ix_conversations_space_bot", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        for column in ("deleted_at", "section_id", "bot_id"):
            batch.drop_column(column)
