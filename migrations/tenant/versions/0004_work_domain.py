"""work domain: project keys and statuses, tasks, labels, watchers, comments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_DOCUMENT = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(description, '')), 'B')"
)


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    # Projects: a key (existing projects get P1, P2, ... in creation order), a task counter and
    # a version for ETags; and their statuses (existing projects get the default three).
    op.add_column("projects", sa.Column("key", sa.String(10), nullable=True))
    op.add_column(
        "projects",
        sa.Column("next_task_number", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column(
        "projects", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )
    op.execute(
        "UPDATE projects SET key = 'P' || numbered.n FROM (SELECT id, row_number() OVER "
        "(ORDER BY created_at, id) AS n FROM projects) AS numbered "
        "WHERE projects.id = numbered.id"
    )
    op.alter_column("projects", "key", nullable=False)
    op.create_check_constraint(op.f("ck_projects_key"), "projects", "key ~ '^[A-Z][A-Z0-9]{1,9}$'")
    op.create_index("ix_projects_key", "projects", ["key"], unique=True)

    op.create_table(
        "project_statuses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("category", sa.String(12), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "category IN ('todo', 'in_progress', 'done')", name=op.f("ck_project_statuses_category")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            ondelete="CASCADE",
            name=op.f("fk_project_statuses_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_statuses")),
    )
    op.create_index(
        "ix_project_statuses_project_id_name",
        "project_statuses",
        ["project_id", sa.text("lower(name)")],
        unique=True,
    )
    op.create_index(
        "ix_project_statuses_project_id_position", "project_statuses", ["project_id", "position"]
    )
    op.execute(
        "INSERT INTO project_statuses (id, project_id, name, category, position) "
        "SELECT gen_random_uuid(), p.id, s.name, s.category, s.position FROM projects p CROSS JOIN "
        "(VALUES ('To Do', 'todo', 0), ('In Progress', 'in_progress', 1), ('Done', 'done', 2)) "
        "AS s(name, category, position)"
    )

    op.create_table(
        "labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("color", sa.String(7), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name=op.f("ck_labels_color")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index("ix_labels_name", "labels", [sa.text("lower(name)")], unique=True)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status_id", sa.Uuid(), nullable=False),
        sa.Column("status_category", sa.String(12), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_id", sa.Uuid(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("position", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(SEARCH_DOCUMENT, persisted=True),
            nullable=False,
        ),
        *_timestamps(),
        sa.CheckConstraint("priority BETWEEN 0 AND 4", name=op.f("ck_tasks_priority")),
        sa.CheckConstraint(
            "due_date IS NULL OR start_date IS NULL OR due_date >= start_date",
            name=op.f("ck_tasks_dates"),
        ),
        sa.CheckConstraint("estimate IS NULL OR estimate >= 0", name=op.f("ck_tasks_estimate")),
        sa.CheckConstraint(
            "status_category IN ('todo', 'in_progress', 'done')",
            name=op.f("ck_tasks_status_category"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            ondelete="CASCADE",
            name=op.f("fk_tasks_project_id_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["status_id"],
            ["project_statuses.id"],
            ondelete="RESTRICT",
            name=op.f("fk_tasks_status_id_project_statuses"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            ondelete="SET NULL",
            name=op.f("fk_tasks_assignee_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"],
            ["users.id"],
            ondelete="SET NULL",
            name=op.f("fk_tasks_reporter_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["tasks.id"], ondelete="CASCADE", name=op.f("fk_tasks_parent_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    for name, columns in (
        ("ix_tasks_created_at_id", ["created_at", "id"]),
        ("ix_tasks_updated_at_id", ["updated_at", "id"]),
        ("ix_tasks_project_id_created_at_id", ["project_id", "created_at", "id"]),
        ("ix_tasks_project_id_status_id", ["project_id", "status_id"]),
        ("ix_tasks_status_id_created_at_id", ["status_id", "created_at", "id"]),
        ("ix_tasks_status_category_created_at_id", ["status_category", "created_at", "id"]),
        ("ix_tasks_assignee_id_created_at_id", ["assignee_id", "created_at", "id"]),
        ("ix_tasks_due_date_id", ["due_date", "id"]),
        ("ix_tasks_priority_id", ["priority", "id"]),
        ("ix_tasks_position_id", ["position", "id"]),
        ("ix_tasks_parent_id", ["parent_id"]),
        ("ix_tasks_project_id_completed_at", ["project_id", "completed_at"]),
    ):
        op.create_index(name, "tasks", columns)
    op.create_index("ix_tasks_project_id_number", "tasks", ["project_id", "number"], unique=True)
    op.create_index("ix_tasks_search", "tasks", ["search"], postgresql_using="gin")

    op.create_table(
        "task_labels",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("label_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], ondelete="CASCADE", name=op.f("fk_task_labels_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            ondelete="CASCADE",
            name=op.f("fk_task_labels_label_id_labels"),
        ),
        sa.PrimaryKeyConstraint("task_id", "label_id", name=op.f("pk_task_labels")),
    )
    op.create_index("ix_task_labels_label_id_task_id", "task_labels", ["label_id", "task_id"])

    op.create_table(
        "task_watchers",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            ondelete="CASCADE",
            name=op.f("fk_task_watchers_task_id_tasks"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            ondelete="CASCADE",
            name=op.f("fk_task_watchers_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_task_watchers")),
    )
    op.create_index("ix_task_watchers_user_id", "task_watchers", ["user_id"])

    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], ondelete="CASCADE", name=op.f("fk_comments_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            ondelete="SET NULL",
            name=op.f("fk_comments_author_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index(
        "ix_comments_task_id_created_at_id", "comments", ["task_id", "created_at", "id"]
    )


def downgrade() -> None:
    for table in (
        "comments",
        "task_watchers",
        "task_labels",
        "tasks",
        "labels",
        "project_statuses",
    ):
        op.drop_table(table)
    op.drop_index("ix_projects_key", table_name="projects")
    op.drop_constraint(op.f("ck_projects_key"), "projects", type_="check")
    for column in ("version", "next_task_number", "key"):
        op.drop_column("projects", column)
