"""task list sort indexes: title, number, due date descending

Every sort of the task list reads an index in keyset order (tests/test_stats_plans.py drives
TaskService.page over each sort, both directions). Missing until now:
- ``title`` and ``number``: the only number index leads with project_id (unique per project);
- ``-due_date``: the list puts tasks without a due date last in both directions, so the
  descending order is (due_date DESC NULLS LAST, id DESC), which a backward scan of
  ix_tasks_due_date_id (NULLS FIRST backwards) cannot give.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tenant schema: never name a schema; search_path is set to the tenant being migrated.


def upgrade() -> None:
    op.create_index("ix_tasks_title_id", "tasks", ["title", "id"])
    op.create_index("ix_tasks_number_id", "tasks", ["number", "id"])
    op.create_index(
        "ix_tasks_due_date_desc_id",
        "tasks",
        [sa.text("due_date DESC NULLS LAST"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_due_date_desc_id", table_name="tasks")
    op.drop_index("ix_tasks_number_id", table_name="tasks")
    op.drop_index("ix_tasks_title_id", table_name="tasks")
