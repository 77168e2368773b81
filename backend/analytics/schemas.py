"""Stats documents. They are cached as JSON, so every field is a plain JSON value."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field


class StatusCount(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    count: int


class CategoryCounts(BaseModel):
    todo: int = 0
    in_progress: int = 0
    done: int = 0


class WeekFlow(BaseModel):
    week: dt.date = Field(description="Monday of the ISO week (UTC).")
    created: int
    completed: int


class CycleTime(BaseModel):
    """Hours from creation to completion of done tasks (null when there are none)."""

    count: int
    p50_hours: float | None
    p90_hours: float | None


class AssigneeLoad(BaseModel):
    assignee_id: uuid.UUID | None = Field(description="null: the unassigned tasks.")
    name: str | None
    open: int


class ProjectTotals(BaseModel):
    project_id: uuid.UUID
    key: str
    name: str
    total: int
    by_category: CategoryCounts


class StatsBase(BaseModel):
    generated_at: dt.datetime = Field(description="When the figures were computed (UTC).")
    total: int
    by_category: CategoryCounts
    overdue: int = Field(description="Not done and due before today (UTC).")
    weekly: list[WeekFlow] = Field(description="The last 12 weeks, oldest first, this week last.")
    cycle_time: CycleTime
    workload: list[AssigneeLoad] = Field(description="Open tasks per assignee, most loaded first.")


class ProjectStats(StatsBase):
    project_id: uuid.UUID
    by_status: list[StatusCount] = Field(description="Every status of the project, board order.")


class TenantStats(StatsBase):
    projects: list[ProjectTotals] = Field(description="Every project, most tasks first.")
