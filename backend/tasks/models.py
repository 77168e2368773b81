from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import TenantBase, TimestampMixin, new_id

PRIORITIES = ("none", "low", "medium", "high", "urgent")  # stored as their index (0..4)
SEARCH_DOCUMENT = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(description, '')), 'B')"
)

task_labels = Table(
    "task_labels",
    TenantBase.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_task_labels_label_id_task_id", "label_id", "task_id"),
)

task_watchers = Table(
    "task_watchers",
    TenantBase.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_task_watchers_user_id", "user_id"),
)


class Task(TimestampMixin, TenantBase):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 0 AND 4", name="priority"),
        CheckConstraint(
            "due_date IS NULL OR start_date IS NULL OR due_date >= start_date", name="dates"
        ),
        CheckConstraint("estimate IS NULL OR estimate >= 0", name="estimate"),
        CheckConstraint(
            "status_category IN ('todo', 'in_progress', 'done')", name="status_category"
        ),
        Index("ix_tasks_project_id_number", "project_id", "number", unique=True),
        # One index per filter and sort path (keyset pagination ends every order with id).
        Index("ix_tasks_created_at_id", "created_at", "id"),
        Index("ix_tasks_updated_at_id", "updated_at", "id"),
        Index("ix_tasks_project_id_created_at_id", "project_id", "created_at", "id"),
        Index("ix_tasks_project_id_status_id", "project_id", "status_id"),
        Index("ix_tasks_status_id_created_at_id", "status_id", "created_at", "id"),
        Index("ix_tasks_status_category_created_at_id", "status_category", "created_at", "id"),
        Index("ix_tasks_assignee_id_created_at_id", "assignee_id", "created_at", "id"),
        Index("ix_tasks_due_date_id", "due_date", "id"),
        # Sorts of the list (0008): descending due date keeps NULLs last.
        Index("ix_tasks_due_date_desc_id", text("due_date DESC NULLS LAST"), text("id DESC")),
        Index("ix_tasks_title_id", "title", "id"),
        Index("ix_tasks_number_id", "number", "id"),
        Index("ix_tasks_priority_id", "priority", "id"),
        Index("ix_tasks_position_id", "position", "id"),
        Index("ix_tasks_parent_id", "parent_id"),
        Index("ix_tasks_project_id_completed_at", "project_id", "completed_at"),
        # Done tasks by completion time: tenant-wide stats, index-only cycle time (migration 0005).
        Index(
            "ix_tasks_done_completed_at",
            "completed_at",
            postgresql_include=["created_at"],
            postgresql_where=text("status_category = 'done' AND completed_at IS NOT NULL"),
        ),
        # Open tasks per assignee (workload), index-only (migration 0005).
        Index(
            "ix_tasks_open_assignee_id",
            "assignee_id",
            postgresql_where=text("status_category IN ('todo', 'in_progress')"),
        ),
        Index("ix_tasks_search", "search", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project_statuses.id", ondelete="RESTRICT")
    )
    #: The status's category, kept beside it for filters and stats without a join.
    status_category: Mapped[str] = mapped_column(String(12))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    estimate: Mapped[float | None] = mapped_column(Float)
    position: Mapped[float] = mapped_column(Float)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: Full-text document, maintained by PostgreSQL; only filtered on, never loaded.
    search: Mapped[str] = mapped_column(
        TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True), deferred=True
    )

    __mapper_args__ = {"version_id_col": version}


class Label(TenantBase):
    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_name", func.lower(text("name")), unique=True),
        CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name="color"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str] = mapped_column(String(7), default="#6b7280")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Comment(TimestampMixin, TenantBase):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_task_id_created_at_id", "task_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    #: When the author last changed the body (null if never); updated_at also moves on edits.
    edited_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Bumped on every change; the ETag.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}
