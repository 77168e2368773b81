"""All SQL of the stats. Every query takes ``project_id``: one project, or None for the tenant.

Each query is shaped for an index of migration 0004 (tests/test_stats_plans.py checks the plans
on 100k tasks): counts per status read ix_tasks_project_id_status_id alone, the weekly flow
reads ix_tasks_project_id_created_at_id / ix_tasks_project_id_completed_at (tenant-wide:
ix_tasks_created_at_id and ix_tasks_done_completed_at of migration 0005, which also makes the
tenant's cycle time an index-only scan), open tasks go through
ix_tasks_status_category_created_at_id (tenant-wide: ix_tasks_open_assignee_id, 0005).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Date, DateTime, Select, cast, extract, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.analytics import projection
from backend.events.models import ProjectTaskCount
from backend.identity.models import User
from backend.projects.models import Project, ProjectStatus
from backend.tasks.models import Task

OPEN_CATEGORIES = ("todo", "in_progress")
SECONDS_PER_HOUR = 3600.0
#: The cycle-time percentiles reported (p50, p90).
PERCENTILES = (0.5, 0.9)
#: Done tasks with a completion time: the predicate of ix_tasks_done_completed_at (0005).
DONE = (Task.status_category == "done", Task.completed_at.is_not(None))


def _scoped(query: Select[Any], project_id: uuid.UUID | None) -> Select[Any]:
    return query if project_id is None else query.where(Task.project_id == project_id)


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def project(self, project_id: uuid.UUID) -> Project | None:
        return await self.session.get(Project, project_id)

    async def projects(self) -> Sequence[Project]:
        return (await self.session.scalars(select(Project).order_by(Project.key))).all()

    async def statuses(self, project_id: uuid.UUID | None) -> Sequence[ProjectStatus]:
        query = select(ProjectStatus).order_by(ProjectStatus.project_id, ProjectStatus.position)
        if project_id is not None:
            query = query.where(ProjectStatus.project_id == project_id)
        return (await self.session.scalars(query)).all()

    async def counts_by_status(self, project_id: uuid.UUID | None) -> dict[uuid.UUID, int]:
        """Tasks per status id (statuses belong to one project, so this also counts projects):
        from the task-counts projection once it is built (backend/analytics/projection.py),
        else from the tasks."""
        if (await self.session.execute(projection.built_query())).first() is not None:
            counts = select(ProjectTaskCount.status_id, ProjectTaskCount.count)
            if project_id is not None:
                counts = counts.where(ProjectTaskCount.project_id == project_id)
            rows = await self.session.execute(counts)
        else:
            query = select(Task.status_id, func.count()).group_by(Task.project_id, Task.status_id)
            rows = await self.session.execute(_scoped(query, project_id))
        return {status_id: count for status_id, count in rows.tuples()}

    async def overdue(self, project_id: uuid.UUID | None, today: dt.date) -> int:
        query = select(func.count()).where(
            Task.due_date < today, Task.status_category.in_(OPEN_CATEGORIES)
        )
        return int((await self.session.execute(_scoped(query, project_id))).scalar_one())

    async def weekly(
        self, project_id: uuid.UUID | None, first_week: dt.datetime, weeks: int
    ) -> list[tuple[dt.date, int, int]]:
        """(Monday, created, completed) for ``weeks`` weeks from ``first_week`` (UTC midnight),
        empty weeks included."""
        last_week = first_week + dt.timedelta(weeks=weeks - 1)
        series = func.generate_series(
            cast(first_week.replace(tzinfo=None), DateTime),
            cast(last_week.replace(tzinfo=None), DateTime),
            literal_column("interval '1 week'"),
        )
        calendar = select(series.label("week")).subquery("calendar")

        def week_of(column: Any) -> Any:
            return func.date_trunc("week", func.timezone("UTC", column))

        created = (
            _scoped(
                select(week_of(Task.created_at).label("week"), func.count().label("n")),
                project_id,
            )
            .where(Task.created_at >= first_week)
            .group_by(literal_column("1"))
            .subquery("created")
        )
        completed = (
            _scoped(
                select(week_of(Task.completed_at).label("week"), func.count().label("n")),
                project_id,
            )
            .where(*DONE, Task.completed_at >= first_week)
            .group_by(literal_column("1"))
            .subquery("completed")
        )
        query = (
            select(
                cast(calendar.c.week, Date),
                func.coalesce(created.c.n, 0),
                func.coalesce(completed.c.n, 0),
            )
            .select_from(calendar)
            .outerjoin(created, created.c.week == calendar.c.week)
            .outerjoin(completed, completed.c.week == calendar.c.week)
            .order_by(calendar.c.week)
        )
        rows = await self.session.execute(query)
        return [(week, int(c), int(d)) for week, c, d in rows.tuples()]

    async def cycle_time(
        self, project_id: uuid.UUID | None
    ) -> tuple[int, float | None, float | None]:
        """(done tasks, p50 hours, p90 hours) from creation to completion.

        Window functions rank the durations (``row_number()`` over their order, ``count()``
        over all); the percentiles then interpolate between the two ranks around
        ``1 + p * (n - 1)``, which is PostgreSQL's ``percentile_cont`` (tested against it)."""
        hours = extract("epoch", Task.completed_at - Task.created_at) / SECONDS_PER_HOUR
        ranked = (
            _scoped(
                select(
                    hours.label("h"),
                    func.row_number().over(order_by=hours).label("rn"),
                    func.count().over().label("n"),
                ),
                project_id,
            )
            .where(*DONE)
            .subquery("ranked")
        )
        h, rn, n = ranked.c.h, ranked.c.rn, ranked.c.n
        bounds = []
        for p in PERCENTILES:
            position = 1 + p * (n - 1)
            bounds += [
                func.max(h).filter(rn == func.floor(position)),
                func.max(h).filter(rn == func.ceil(position)),
            ]
        count, *values = (await self.session.execute(select(func.count(), *bounds))).one()
        results = [
            _interpolate(p, int(count), values[2 * i], values[2 * i + 1])
            for i, p in enumerate(PERCENTILES)
        ]
        return int(count), _hours(results[0]), _hours(results[1])

    async def workload(
        self, project_id: uuid.UUID | None
    ) -> list[tuple[uuid.UUID | None, str | None, int]]:
        """(assignee id or None, name, open tasks), most loaded first."""
        open_tasks = (
            _scoped(
                select(Task.assignee_id, func.count().label("n")),
                project_id,
            )
            .where(Task.status_category.in_(OPEN_CATEGORIES))
            .group_by(Task.assignee_id)
            .subquery("open_tasks")
        )
        query = (
            select(
                open_tasks.c.assignee_id,
                func.coalesce(func.nullif(User.name, ""), User.__table__.c.email),
                open_tasks.c.n,
            )
            .outerjoin(User, User.__table__.c.id == open_tasks.c.assignee_id)
            .order_by(open_tasks.c.n.desc(), open_tasks.c.assignee_id.nulls_last())
        )
        rows = await self.session.execute(query)
        return [(a, name, int(n)) for a, name, n in rows.tuples()]


def _interpolate(p: float, n: int, low: float | None, high: float | None) -> float | None:
    """The ``p`` percentile from the values at ranks floor and ceil of ``1 + p * (n - 1)``."""
    if n == 0 or low is None or high is None:
        return None
    position = 1 + p * (n - 1)
    return float(low) + (position - math.floor(position)) * (float(high) - float(low))


def _hours(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
