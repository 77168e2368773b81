"""Stats use cases: compute a project's or the tenant's figures, through the cache."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from backend.analytics import cache
from backend.analytics.repository import StatsRepository
from backend.analytics.schemas import (
    AssigneeLoad,
    CategoryCounts,
    CycleTime,
    ProjectStats,
    ProjectTotals,
    StatusCount,
    TenantStats,
    WeekFlow,
)
from backend.kit.errors import Problem

WEEKS = 12


def _first_week(now: dt.datetime) -> dt.datetime:
    """UTC midnight of the Monday ``WEEKS - 1`` weeks before this week's."""
    today = now.astimezone(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    first = monday - dt.timedelta(weeks=WEEKS - 1)
    return dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)


class StatsService:
    def __init__(
        self, repo: StatsRepository, redis: aioredis.Redis, tenant_id: uuid.UUID, ttl: int
    ) -> None:
        self.repo = repo
        self.redis = redis
        self.tenant_id = tenant_id
        self.ttl = ttl

    async def project_stats(self, project_id: uuid.UUID) -> tuple[ProjectStats, cache.CacheStatus]:
        """A project's figures (404 for an id that is not a project of this tenant).

        A cache hit reads no table: an entry exists only for a project that existed when it
        was computed (the miss checks), and every project write, deletion included, moves the
        tenant's stats generation on (analytics.cache.StatsWriteDB), so a deleted project's
        entry is never read again. Entries are under the tenant's keys: another tenant's id
        can only miss, and answers 404."""

        async def compute() -> ProjectStats:
            if await self.repo.project(project_id) is None:
                raise Problem(404, "project-not-found", f"No project {project_id}.")
            return await self._compute_project(project_id)

        return await cache.cached(
            self.redis,
            self.tenant_id,
            ("project", str(project_id)),
            ProjectStats,
            compute,
            ttl=self.ttl,
        )

    async def tenant_stats(self) -> tuple[TenantStats, cache.CacheStatus]:
        """The tenant's figures over every project, with per-project totals."""
        return await cache.cached(
            self.redis, self.tenant_id, ("tenant",), TenantStats, self._compute_tenant, ttl=self.ttl
        )

    async def _common(self, project_id: uuid.UUID | None) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        count, p50, p90 = await self.repo.cycle_time(project_id)
        weekly = await self.repo.weekly(project_id, _first_week(now), WEEKS)
        workload = await self.repo.workload(project_id)
        return {
            "generated_at": now,
            "overdue": await self.repo.overdue(project_id, now.date()),
            "weekly": [WeekFlow(week=w, created=c, completed=d) for w, c, d in weekly],
            "cycle_time": CycleTime(count=count, p50_hours=p50, p90_hours=p90),
            "workload": [AssigneeLoad(assignee_id=a, name=n, open=o) for a, n, o in workload],
        }

    async def _compute_project(self, project_id: uuid.UUID) -> ProjectStats:
        counts = await self.repo.counts_by_status(project_id)
        statuses = await self.repo.statuses(project_id)
        by_status = [
            StatusCount(id=s.id, name=s.name, category=s.category, count=counts.get(s.id, 0))
            for s in statuses
        ]
        return ProjectStats(
            project_id=project_id,
            total=sum(counts.values()),
            by_category=_categories((s.category, s.count) for s in by_status),
            by_status=by_status,
            **await self._common(project_id),
        )

    async def _compute_tenant(self) -> TenantStats:
        counts = await self.repo.counts_by_status(None)
        per_project: dict[uuid.UUID, list[tuple[str, int]]] = defaultdict(list)
        for status in await self.repo.statuses(None):
            per_project[status.project_id].append((status.category, counts.get(status.id, 0)))
        projects = [
            ProjectTotals(
                project_id=p.id,
                key=p.key,
                name=p.name,
                total=sum(n for _, n in per_project[p.id]),
                by_category=_categories(per_project[p.id]),
            )
            for p in await self.repo.projects()
        ]
        projects.sort(key=lambda p: -p.total)
        return TenantStats(
            total=sum(counts.values()),
            by_category=_categories(
                (category, n) for pairs in per_project.values() for category, n in pairs
            ),
            projects=projects,
            **await self._common(None),
        )


def _categories(pairs: Iterable[tuple[str, int]]) -> CategoryCounts:
    totals: dict[str, int] = defaultdict(int)
    for category, count in pairs:
        totals[category] += count
    return CategoryCounts(**totals)
