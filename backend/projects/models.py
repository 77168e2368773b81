from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import TenantBase, TimestampMixin, new_id

STATUS_CATEGORIES = ("todo", "in_progress", "done")
#: Statuses a new project starts with: (name, category).
DEFAULT_STATUSES = (("To Do", "todo"), ("In Progress", "in_progress"), ("Done", "done"))


class Project(TimestampMixin, TenantBase):
    __tablename__ = "projects"
    __table_args__ = (
        Index("ix_projects_created_at_id", "created_at", "id"),
        CheckConstraint("key ~ '^[A-Z][A-Z0-9]{1,9}$'", name="key"),
        Index("ix_projects_key", "key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: Short uppercase code that prefixes task keys (OPS -> OPS-42); unique, never changes.
    key: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    #: The number the next task of the project gets.
    next_task_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: Bumped on every change; the ETag.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class ProjectStatus(TenantBase):
    """One column of a project's board, in a category (todo, in progress, done)."""

    __tablename__ = "project_statuses"
    __table_args__ = (
        CheckConstraint(f"category IN {STATUS_CATEGORIES!r}", name="category"),
        Index(
            "ix_project_statuses_project_id_name",
            "project_id",
            func.lower(text("name")),
            unique=True,
        ),
        Index("ix_project_statuses_project_id_position", "project_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(12))
    position: Mapped[int] = mapped_column(Integer)
