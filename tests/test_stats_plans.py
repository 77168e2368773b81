"""On 100k tasks, the tasks list queries and the stats queries read indexes, never the table.

One tenant gets 100k tasks over ten projects (one INSERT ... SELECT generate_series), then
VACUUM ANALYZE (what autovacuum does in production). The stats queries are the repository's
own, captured as they run; each list query is the shape the tasks API sends (keyset order,
LIMIT). Every plan is read with EXPLAIN (FORMAT JSON).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select, text, tuple_

from bench.tasks.seed import seed_tasks
from tenancy.naming import quote_schema

TASKS = 100_000
PROJECTS = 10
#: Scans that go through an index (a Bitmap Heap Scan reads the pages its index scan found).
INDEXED = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _scans_of_tasks(plan: dict[str, Any]) -> list[str]:
    return [n["Node Type"] for n in _nodes(plan) if n.get("Relation Name") == "tasks"]


@pytest.fixture(scope="module")
async def big(make_tenant, sync_engine, add_user, settings):
    """(tenant, async engine, project ids, user ids) with 100k tasks."""
    from backend.kit.db import make_async_engine
    from backend.projects.models import DEFAULT_STATUSES, Project, ProjectStatus
    from tenancy.db import translate_map

    tenant = make_tenant("plans")
    users = [add_user(tenant, "member")[0] for _ in range(5)]
    projects = [uuid.uuid4() for _ in range(PROJECTS)]
    schema = tenant.record.schema_name
    started = time.monotonic()
    with sync_engine.begin() as conn:
        bound = conn.execution_options(schema_translate_map=translate_map(schema))
        for i, project_id in enumerate(projects):
            bound.execute(insert(Project).values(id=project_id, key=f"PL{i}", name=f"p{i}"))
            bound.execute(
                insert(ProjectStatus),
                [
                    {"project_id": project_id, "name": name, "category": cat, "position": pos}
                    for pos, (name, cat) in enumerate(DEFAULT_STATUSES)
                ],
            )
        seed_tasks(conn, schema, projects, users, TASKS)
    with sync_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {quote_schema(schema)}.tasks"))
        assert (
            conn.execute(text(f"SELECT count(*) FROM {quote_schema(schema)}.tasks")).scalar_one()
            == TASKS
        )
    assert time.monotonic() - started < 20, "seeding 100k tasks got slow"
    engine = make_async_engine(settings.database_url, pool_size=2)
    yield tenant, engine, projects, users
    await engine.dispose()


async def _plans_of(engine, tenant, run) -> list[tuple[str, dict[str, Any]]]:
    """Run ``run(session)`` and return (statement, plan) of every statement it sent."""
    from tenancy.db import tenant_session

    sent: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with tenant_session(engine, tenant.record) as session:
            await run(session)
            plans = []
            for statement, parameters in sent:
                conn = await session.connection()
                result = await conn.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + statement, parameters
                )
                plans.append((statement, result.scalar_one()[0]["Plan"]))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return plans


def _assert_indexed(plans: list[tuple[str, dict[str, Any]]], expected: int) -> None:
    touching = [(s, p) for s, p in plans if _scans_of_tasks(p)]
    assert len(touching) == expected, [s for s, _ in plans]
    for statement, plan in touching:
        scans = _scans_of_tasks(plan)
        assert "Seq Scan" not in scans, f"{statement}\n{scans}"
        assert set(scans) <= INDEXED, f"{statement}\n{scans}"


async def test_list_queries_use_indexes(big):
    from backend.projects.models import ProjectStatus
    from backend.tasks.models import Task

    tenant, engine, projects, users = big
    keyset = (Task.created_at, Task.id)
    after = tuple_(literal(dt.datetime.now(dt.UTC) - dt.timedelta(days=30)), literal(uuid.uuid4()))
    first_status = select(ProjectStatus.id).where(ProjectStatus.project_id == projects[0]).limit(1)

    async def run(session):
        page = select(Task).order_by(*keyset).limit(51)
        await session.scalars(page.where(Task.project_id == projects[0]))
        await session.scalars(page.where(Task.project_id == projects[1], tuple_(*keyset) > after))
        await session.scalars(page.where(Task.assignee_id == users[0]))
        status_id = (await session.execute(first_status)).scalar_one()
        await session.scalars(page.where(Task.status_id == status_id))
        await session.scalars(
            select(Task)
            .where(Task.due_date >= dt.date.today())
            .order_by(Task.due_date, Task.id)
            .limit(51)
        )
        query = func.websearch_to_tsquery("simple", "invoice delta")
        await session.scalars(page.where(Task.search.bool_op("@@")(query)))

    _assert_indexed(await _plans_of(engine, tenant, run), expected=6)


async def test_project_stats_queries_use_indexes(big):
    from backend.analytics.repository import StatsRepository
    from backend.analytics.service import WEEKS, _first_week

    tenant, engine, projects, _ = big
    now = dt.datetime.now(dt.UTC)

    async def run(session):
        repo = StatsRepository(session)
        await repo.counts_by_status(projects[3])
        await repo.overdue(projects[3], now.date())
        weekly = await repo.weekly(projects[3], _first_week(now), WEEKS)
        await repo.cycle_time(projects[3])
        await repo.workload(projects[3])
        # The figures are real: 12 weeks, and the seed's tasks show up in them.
        assert len(weekly) == WEEKS and sum(c for _, c, _ in weekly) > 0

    _assert_indexed(await _plans_of(engine, tenant, run), expected=5)


async def test_tenant_stats_queries_use_indexes(big):
    from backend.analytics.repository import StatsRepository
    from backend.analytics.service import WEEKS, _first_week

    tenant, engine, _, _ = big
    now = dt.datetime.now(dt.UTC)

    async def run(session):
        repo = StatsRepository(session)
        assert sum((await repo.counts_by_status(None)).values()) == TASKS
        await repo.overdue(None, now.date())
        await repo.weekly(None, _first_week(now), WEEKS)
        await repo.cycle_time(None)
        await repo.workload(None)

    _assert_indexed(await _plans_of(engine, tenant, run), expected=5)


async def test_the_list_reads_an_index_for_every_sort_and_filter(big):
    """The tasks list as the route runs it (``TaskService.page``): every allowed sort in both
    directions, first page and the page after, and every filter alone, read indexes only."""
    from backend.tasks.listing import SORT_FIELDS, Sort
    from backend.tasks.repository import TaskRepository
    from backend.tasks.service import TaskFilters, TaskService

    tenant, engine, projects, users = big
    today = dt.date.today()

    async def status_of(session) -> uuid.UUID:
        from backend.projects.models import ProjectStatus

        query = select(ProjectStatus.id).where(ProjectStatus.project_id == projects[0]).limit(1)
        return (await session.execute(query)).scalar_one()

    async def run(session):
        service = TaskService(TaskRepository(session))
        for name in SORT_FIELDS:
            for sort in (Sort(name), Sort(f"-{name}")):
                _, cursor = await service.page(
                    filters=TaskFilters(), sort=sort, limit=50, cursor=None
                )
                assert cursor is not None
                await service.page(filters=TaskFilters(), sort=sort, limit=50, cursor=cursor)
        status_id = await status_of(session)
        for filters in (
            TaskFilters(project_id=projects[0]),
            TaskFilters(status_id=status_id),
            TaskFilters(status_category="in_progress"),
            TaskFilters(assignee_id=users[0]),
            TaskFilters(label=uuid.uuid4()),
            TaskFilters(due_before=today - dt.timedelta(days=300)),
            TaskFilters(due_after=today + dt.timedelta(days=300)),
            TaskFilters(parent_id=uuid.uuid4()),
            TaskFilters(q="invoice delta"),
            TaskFilters(project_id=projects[1], status_category="done", assignee_id=users[1]),
        ):
            await service.page(filters=filters, sort=Sort("created_at"), limit=50, cursor=None)

    plans = await _plans_of(engine, tenant, run)
    touching = [(s, p) for s, p in plans if _scans_of_tasks(p)]
    assert len(touching) == len(SORT_FIELDS) * 4 + 10
    for statement, plan in touching:
        scans = _scans_of_tasks(plan)
        assert set(scans) <= INDEXED, f"{statement}\n{scans}"
