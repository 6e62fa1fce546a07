"""Bots and apps (each in a space), and their variables: declarations and stored values.

Before this revision a bot or app was a bare id. The ids already in use become bots and apps named after
themselves, so what worked keeps working: apps of workflows (in the workflow's space), bots of runs and
conversations (in their space), and owners of tables and conversation templates (in the run's or
conversation's space when one names them, else the first space).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def _owners(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", ID, nullable=False),
        sa.Column("space_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name=f"fk_{name}_space_id_spaces"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


# Where the ids in use come from, each with the space it was used in (NULL: none known).
_IN_USE = {
    "apps": [
        "SELECT app_id, space_id FROM workflows WHERE app_id IS NOT NULL AND app_id <> ''",
        "SELECT app_id, space_id FROM runs WHERE app_id <> ''",
        "SELECT app_id, NULL FROM conversation_templates",
        "SELECT owner_id, NULL FROM database_tables WHERE owner_kind = 'app'",
    ],
    "bots": [
        "SELECT bot_id, space_id FROM runs WHERE bot_id <> ''",
        "SELECT bot_id, space_id FROM conversations WHERE bot_id <> ''",
        "SELECT owner_id, NULL FROM database_tables WHERE owner_kind = 'bot'",
    ],
}


def _adopt(name: str) -> None:
    """The ids in use become rows, each in the first space it was used in (the first space if none)."""
    bind = op.get_bind()
    spaces = [row[0] for row in bind.execute(sa.text("SELECT id FROM spaces ORDER BY created_at, id"))]
    known = set(spaces)
    if not spaces:
        return
    found: dict[str, str | None] = {}
    for query in _IN_USE[name]:
        for owner_id, space_id in bind.execute(sa.text(query)):
            if found.get(owner_id) is None:
                found[owner_id] = space_id if space_id in known else None
    table = sa.table(name, sa.column("id"), sa.column("space_id"), sa.column("name"), sa.column("created_at"))
    now = time.time()
    rows = [{"id": owner_id, "space_id": space_id or spaces[0], "name": owner_id, "created_at": now}
            for owner_id, space_id in sorted(found.items())]
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    _owners("bots")
    _owners("apps")
    _adopt("bots")
    _adopt("apps")
    op.create_table(
        "variables",
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("default_value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("owner_kind", "owner_id", "name", name="pk_variables"),
    )
    op.create_table(
        "variable_values",
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("connector_id", sa.String(32), nullable=False),
        sa.Column("connector_uid", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("owner_kind", "owner_id", "connector_id", "connector_uid", "name",
                                name="pk_variable_values"),
    )


def downgrade() -> None:
    op.drop_table("variable_values")
    op.drop_table("variables")
    op.drop_table("apps")
    op.drop_table("bots")
