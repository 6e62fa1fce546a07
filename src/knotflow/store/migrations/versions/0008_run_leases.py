"""Run ownership: the process that runs a run holds it by a lease it renews; a run whose lease lapsed has lost
its process and is ended (or handed back to its question) by any server's sweeper.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(96), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Double, nullable=True))
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_until"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_lease", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
