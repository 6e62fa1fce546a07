"""The initial schema: spaces, tokens, workflows and their versions, runs and node executions.

A frozen copy of `knotflow.store.tables` as of this revision (migrations must not follow later edits of it).

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spaces"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("space_ids", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )
    op.create_table(
        "workflows",
        sa.Column("id", ID, nullable=False),
        sa.Column("space_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("icon_url", sa.Text(), nullable=False),
        sa.Column("app_id", ID, nullable=True),
        sa.Column("requires_bot", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("canvas", sa.Text(), nullable=False),
        sa.Column("creator_id", ID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("latest_version", sa.String(64), nullable=True),
        sa.Column("published_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name="fk_workflows_space_id_spaces"),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
    )
    op.create_index("ix_workflows_space_created", "workflows", ["space_id", "created_at"])
    op.create_index("ix_workflows_created", "workflows", ["created_at"])
    op.create_table(
        "workflow_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("canvas", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("creator_id", ID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name="fk_workflow_versions_workflow_id_workflows"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_versions"),
        sa.UniqueConstraint("workflow_id", "version", name="uq_workflow_versions_workflow_version"),
        sa.UniqueConstraint("workflow_id", "seq", name="uq_workflow_versions_workflow_seq"),
    )
    op.create_table(
        "runs",
        sa.Column("execute_id", ID, nullable=False),
        sa.Column("workflow_id", ID, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("space_id", ID, nullable=False),
        sa.Column("run_mode", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("connector_id", sa.String(32), nullable=False),
        sa.Column("connector_uid", sa.String(255), nullable=False),
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("logid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("execute_id", name="pk_runs"),
    )
    op.create_index("ix_runs_workflow_created", "runs", ["workflow_id", "created_at"])
    op.create_index("ix_runs_status_updated", "runs", ["status", "updated_at"])
    op.create_table(
        "node_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("execute_id", ID, nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("node_type", sa.String(32), nullable=False),
        sa.Column("node_title", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("finished_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_node_executions"),
    )
    op.create_index("ix_node_executions_execute", "node_executions", ["execute_id", "started_at"])


def downgrade() -> None:
    op.drop_table("node_executions")
    op.drop_table("runs")
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
    op.drop_table("tokens")
    op.drop_table("spaces")
