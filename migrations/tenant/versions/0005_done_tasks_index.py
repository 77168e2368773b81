"""stats indexes: done tasks by completion time, open tasks by assignee

The per-project stats have indexes in 0004; the tenant-wide ones scanned every task:
- weekly completed and cycle-time percentiles had no index leading with completed_at.
  ix_tasks_done_completed_at holds only done tasks and carries created_at, so cycle time is an
  index-only scan;
- workload (open tasks per assignee) read most of the table. ix_tasks_open_assignee_id holds
  only open tasks, so the count per assignee is an index-only scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tenant schema: never name a schema; search_path is set to the tenant being migrated.


def upgrade() -> None:
    op.create_index(
        "ix_tasks_done_completed_at",
        "tasks",
        ["completed_at"],
        postgresql_include=["created_at"],
        postgresql_where=sa.text("status_category = 'done' AND completed_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_open_assignee_id",
        "tasks",
        ["assignee_id"],
        postgresql_where=sa.text("status_category IN ('todo', 'in_progress')"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_open_assignee_id", table_name="tasks")
    op.drop_index("ix_tasks_done_completed_at", table_name="tasks")
