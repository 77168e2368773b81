"""Project and tenant stats: the figures, the Redis cache (hit skips the database, Redis away
still answers) and tenant isolation of both figures and cache entries."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import event, insert, select, text

from tests.conftest import assert_problem, bearer, login, login_as

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
#: Monday 00:00 UTC of this week: completions anchored here stay inside the current week
#: whatever the day and hour the suite runs (NOW + 30 h crosses into next week on a Saturday).
WEEK_START = dt.datetime.combine(TODAY - dt.timedelta(days=TODAY.weekday()), dt.time(), dt.UTC)
NUMBERS = itertools.count(1)
TASKS_TABLE = re.compile(r"\.tasks\b")


def insert_tasks(sync_engine, tenant, project_id: str, rows: list[dict[str, Any]]) -> None:
    """Task rows straight into the tenant's schema (the tasks API is not needed here)."""
    from backend.tasks.models import Task
    from tenancy.db import translate_map

    with sync_engine.begin() as conn:
        bound = conn.execution_options(
            schema_translate_map=translate_map(tenant.record.schema_name)
        )
        bound.execute(
            insert(Task),
            [
                {
                    "id": uuid.uuid4(),
                    "project_id": project_id,
                    "number": next(NUMBERS),
                    "title": f"task {i}",
                    "description": "",
                    "priority": 0,
                    "position": float(i),
                    "created_at": NOW,
                    "updated_at": NOW,
                    "due_date": None,
                    "assignee_id": None,
                    "completed_at": None,
                    **row,
                }
                for i, row in enumerate(rows)
            ],
        )


async def _project(client, headers, name: str) -> tuple[str, dict[str, str]]:
    """A new project's id and its statuses' ids by category."""
    resp = await client.post("/api/v1/projects", json={"name": name}, headers=headers)
    project_id = resp.json()["id"]
    statuses = await client.get(f"/api/v1/projects/{project_id}/statuses", headers=headers)
    return project_id, {s["category"]: s["id"] for s in statuses.json()}


def _task(statuses: dict[str, str], category: str, **extra: Any) -> dict[str, Any]:
    return {"status_id": statuses[category], "status_category": category, **extra}


@contextmanager
def tasks_statements(app) -> Iterator[list[str]]:
    """Statements against the tasks table that the app sends meanwhile."""
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany) -> None:
        if TASKS_TABLE.search(statement):
            seen.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


async def test_project_stats_figures(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("stats")
    headers = await login(client, tenant)
    user_id, _ = add_user(tenant, "member")
    project_id, st = await _project(client, headers, "Figures")
    other_id, other_st = await _project(client, headers, "Other")
    yesterday, tomorrow = TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=1)
    insert_tasks(
        sync_engine,
        tenant,
        project_id,
        [
            _task(st, "todo", due_date=yesterday, assignee_id=user_id),  # overdue
            _task(st, "todo", assignee_id=user_id),
            _task(st, "in_progress", due_date=tomorrow),
            _task(
                st,
                "done",
                due_date=yesterday,
                created_at=WEEK_START,
                completed_at=WEEK_START + dt.timedelta(hours=10),
            ),
            _task(
                st,
                "done",
                created_at=WEEK_START,
                completed_at=WEEK_START + dt.timedelta(hours=30),
            ),
            # Created 20 weeks ago: counts everywhere but in the 12 weeks of flow.
            _task(st, "todo", created_at=NOW - dt.timedelta(weeks=20)),
        ],
    )
    insert_tasks(sync_engine, tenant, other_id, [_task(other_st, "todo", due_date=yesterday)])

    resp = await client.get(f"/api/v1/projects/{project_id}/stats", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["project_id"] == project_id and body["total"] == 6
    assert [(s["name"], s["category"], s["count"]) for s in body["by_status"]] == [
        ("To Do", "todo", 3),
        ("In Progress", "in_progress", 1),
        ("Done", "done", 2),
    ]
    assert body["by_category"] == {"todo": 3, "in_progress": 1, "done": 2}
    assert body["overdue"] == 1  # the done task due yesterday is not overdue
    weekly = body["weekly"]
    assert len(weekly) == 12
    mondays = [dt.date.fromisoformat(w["week"]) for w in weekly]
    assert all(m.weekday() == 0 for m in mondays) and mondays == sorted(mondays)
    assert mondays[-1] <= TODAY < mondays[-1] + dt.timedelta(days=7)
    assert sum(w["created"] for w in weekly) == 5 and weekly[-1]["created"] == 5
    assert sum(w["completed"] for w in weekly) == 2
    assert [w["created"] for w in weekly[:-1]] == [0] * 11  # empty weeks show 0
    # percentile_cont over 10 h and 30 h: the median 20 h, p90 28 h.
    assert body["cycle_time"] == {"count": 2, "p50_hours": 20.0, "p90_hours": 28.0}
    assert body["workload"] == [
        {"assignee_id": str(user_id), "name": "Member", "open": 2},
        {"assignee_id": None, "name": None, "open": 2},  # ties: unassigned last
    ]


async def test_tenant_stats_cover_every_project(client, make_tenant, sync_engine):
    tenant = make_tenant("tstats")
    headers = await login(client, tenant)
    first, st1 = await _project(client, headers, "Alpha")
    second, st2 = await _project(client, headers, "Beta")
    empty, _ = await _project(client, headers, "Gamma")
    insert_tasks(sync_engine, tenant, first, [_task(st1, "todo"), _task(st1, "in_progress")])
    done = _task(
        st2, "done", created_at=WEEK_START, completed_at=WEEK_START + dt.timedelta(hours=4)
    )
    insert_tasks(sync_engine, tenant, second, [_task(st2, "todo"), done, dict(done)])

    resp = await client.get("/api/v1/analytics/tenant", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == 5 and body["by_category"] == {"todo": 2, "in_progress": 1, "done": 2}
    totals = {p["project_id"]: (p["total"], p["by_category"]) for p in body["projects"]}
    assert totals == {
        second: (3, {"todo": 1, "in_progress": 0, "done": 2}),
        first: (2, {"todo": 1, "in_progress": 1, "done": 0}),
        empty: (0, {"todo": 0, "in_progress": 0, "done": 0}),
    }
    assert body["projects"][0]["project_id"] == second  # most tasks first
    assert body["cycle_time"] == {"count": 2, "p50_hours": 4.0, "p90_hours": 4.0}
    assert body["workload"] == [{"assignee_id": None, "name": None, "open": 3}]
    assert sum(w["completed"] for w in body["weekly"]) == 2


async def test_a_cache_hit_reads_no_tasks_and_a_write_makes_it_stale(
    app, client, make_tenant, sync_engine
):
    from backend.analytics.cache import invalidate

    tenant = make_tenant("scache")
    headers = await login(client, tenant)
    project_id, st = await _project(client, headers, "Cached")
    insert_tasks(sync_engine, tenant, project_id, [_task(st, "todo")])
    path = f"/api/v1/projects/{project_id}/stats"
    for url in (path, "/api/v1/analytics/tenant"):
        with tasks_statements(app) as seen:
            miss = await client.get(url, headers=headers)
        assert miss.headers["X-Cache"] == "miss" and len(seen) >= 4, seen
        with tasks_statements(app) as seen:
            hit = await client.get(url, headers=headers)
        assert hit.headers["X-Cache"] == "hit" and seen == []
        assert hit.json() == miss.json()

    # A task write without invalidation: the cached figures stand (that is the cache at work)...
    insert_tasks(sync_engine, tenant, project_id, [_task(st, "done", completed_at=NOW)])
    assert (await client.get(path, headers=headers)).json()["total"] == 1
    # ...and the invalidation every task write sends makes both documents stale at once.
    await invalidate(app.state.resources.redis, tenant.id)
    for url in (path, "/api/v1/analytics/tenant"):
        resp = await client.get(url, headers=headers)
        assert resp.headers["X-Cache"] == "miss" and resp.json()["total"] == 2


async def test_stats_answer_from_the_database_when_redis_is_away(app, client, make_tenant):
    tenant = make_tenant("snoredis")
    headers = await login(client, tenant)
    project_id, _ = await _project(client, headers, "Away")
    resources = app.state.resources
    working = resources.redis
    resources.redis = aioredis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        for url in (f"/api/v1/projects/{project_id}/stats", "/api/v1/analytics/tenant"):
            for _ in range(2):  # never a hit: nothing can be stored
                resp = await client.get(url, headers=headers)
                assert resp.status_code == 200, resp.text
                assert resp.headers["X-Cache"] == "bypass" and resp.json()["total"] == 0
    finally:
        await resources.redis.aclose()
        resources.redis = working
    resp = await client.get("/api/v1/analytics/tenant", headers=headers)
    assert resp.headers["X-Cache"] == "miss"


async def test_tenants_never_see_each_others_figures_or_cache(
    app, client, make_tenant, add_user, sync_engine, sync_redis
):
    a, b = make_tenant("sisoa"), make_tenant("sisob")
    a_headers, b_headers = await login(client, a), await login(client, b)
    a_project, a_st = await _project(client, a_headers, "Secret")
    b_project, b_st = await _project(client, b_headers, "Mine")
    insert_tasks(sync_engine, a, a_project, [_task(a_st, "todo")] * 3)
    insert_tasks(sync_engine, b, b_project, [_task(b_st, "todo")])

    assert (await client.get("/api/v1/analytics/tenant", headers=a_headers)).json()["total"] == 3
    await client.get(f"/api/v1/projects/{a_project}/stats", headers=a_headers)
    # Poison a's cached documents: if b ever read them, b would show the marker.
    a_keys = [
        k for k in sync_redis.keys(f"tf:{{{a.id}}}:stats:*") if not k.endswith(b":generation")
    ]
    assert len(a_keys) == 2
    for key in a_keys:
        doc = json.loads(sync_redis.get(key))
        doc["total"] = 4242
        sync_redis.set(key, json.dumps(doc), ex=60)

    b_tenant = await client.get("/api/v1/analytics/tenant", headers=b_headers)
    assert b_tenant.headers["X-Cache"] == "miss" and b_tenant.json()["total"] == 1
    assert [p["project_id"] for p in b_tenant.json()["projects"]] == [b_project]
    b_own = await client.get(f"/api/v1/projects/{b_project}/stats", headers=b_headers)
    assert b_own.json()["total"] == 1
    # a's project id at b: 404, not a's (cached) figures.
    resp = await client.get(f"/api/v1/projects/{a_project}/stats", headers=b_headers)
    assert_problem(resp, 404, "project-not-found")
    # b's documents live under b's hash tag only; a's poisoned ones are what a reads.
    assert len(sync_redis.keys(f"tf:{{{b.id}}}:stats:*")) == 3  # and its generation
    assert (await client.get("/api/v1/analytics/tenant", headers=a_headers)).json()["total"] == 4242


async def test_every_role_reads_stats_and_unknown_projects_are_404(client, make_tenant, add_user):
    tenant = make_tenant("srole")
    owner = await login(client, tenant)
    project_id, _ = await _project(client, owner, "Roles")
    _, email = add_user(tenant, "viewer")
    viewer = bearer(tenant, (await login_as(client, tenant, email))["access_token"])
    assert (
        await client.get(f"/api/v1/projects/{project_id}/stats", headers=viewer)
    ).status_code == 200
    assert (await client.get("/api/v1/analytics/tenant", headers=viewer)).status_code == 200
    resp = await client.get(f"/api/v1/projects/{uuid.uuid4()}/stats", headers=viewer)
    assert_problem(resp, 404, "project-not-found")
    assert_problem(await client.get("/api/v1/projects/nope/stats", headers=viewer), 422)
    assert_problem(
        await client.get("/api/v1/analytics/tenant", headers={"X-Tenant": tenant.slug}), 401
    )


async def test_every_task_and_project_write_through_the_api_makes_the_stats_stale(
    client, make_tenant
):
    tenant = make_tenant("sstale")
    headers = await login(client, tenant)
    project_id, st = await _project(client, headers, "Stale")
    path = f"/api/v1/projects/{project_id}/stats"

    async def warm() -> None:
        for url in (path, "/api/v1/analytics/tenant"):
            await client.get(url, headers=headers)
            assert (await client.get(url, headers=headers)).headers["X-Cache"] == "hit"

    async def stale() -> dict[str, Any]:
        tenant_doc = await client.get("/api/v1/analytics/tenant", headers=headers)
        assert tenant_doc.headers["X-Cache"] == "miss"
        resp = await client.get(path, headers=headers)
        assert resp.headers["X-Cache"] == "miss"
        return resp.json()  # type: ignore[no-any-return]

    await warm()
    created = await client.post(
        f"/api/v1/projects/{project_id}/tasks", json={"title": "one"}, headers=headers
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert (await stale())["total"] == 1

    await warm()
    patched = await client.patch(
        f"/api/v1/tasks/{task_id}", json={"status_id": st["done"]}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert (await stale())["by_category"]["done"] == 1

    await warm()
    bulk = await client.post(
        "/api/v1/tasks/bulk",
        json={"task_ids": [task_id], "set": {"status_id": st["todo"]}},
        headers=headers,
    )
    assert bulk.status_code == 200, bulk.text
    assert (await stale())["by_category"]["todo"] == 1

    await warm()
    refused = await client.patch(
        f"/api/v1/tasks/{task_id}", json={"status_id": str(uuid.uuid4())}, headers=headers
    )
    assert refused.status_code == 422  # a refused write changes nothing, and keeps the cache
    assert (await client.get(path, headers=headers)).headers["X-Cache"] == "hit"

    other, _ = await _project(client, headers, "Other")  # a project write: tenant doc stale
    assert (await client.get("/api/v1/analytics/tenant", headers=headers)).headers[
        "X-Cache"
    ] == "miss"

    await warm()
    deleted = await client.delete(f"/api/v1/tasks/{task_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert (await stale())["total"] == 0
    assert other


async def test_cycle_time_percentiles_match_percentile_cont(app, make_tenant, sync_engine):
    """The window-function percentiles equal PostgreSQL's percentile_cont on the same rows:
    odd and even counts, ties, one task, none."""
    import random

    from backend.analytics.repository import StatsRepository
    from tenancy.db import tenant_session
    from tenancy.naming import quote_schema

    tenant = make_tenant("pct")
    engine = app.state.resources.engine
    schema = tenant.record.schema_name
    rng = random.Random(7)
    start = NOW - dt.timedelta(days=30)
    async with tenant_session(engine, tenant.record) as session:
        assert await StatsRepository(session).cycle_time(None) == (0, None, None)
    for size in (1, 2, 5, 8, 13):
        project_id = uuid.uuid4()
        with sync_engine.begin() as conn:
            from backend.projects.models import DEFAULT_STATUSES, Project, ProjectStatus
            from tenancy.db import translate_map

            bound = conn.execution_options(schema_translate_map=translate_map(schema))
            bound.execute(insert(Project).values(id=project_id, key=f"P{size}", name=f"p{size}"))
            bound.execute(
                insert(ProjectStatus),
                [
                    {"project_id": project_id, "name": n, "category": c, "position": i}
                    for i, (n, c) in enumerate(DEFAULT_STATUSES)
                ],
            )
            done = bound.execute(
                select(ProjectStatus.id).where(
                    ProjectStatus.project_id == project_id, ProjectStatus.category == "done"
                )
            ).scalar_one()
        hours = [rng.choice([3, 3, 7.5, 10, 26, 48.25, 100]) for _ in range(size)]
        insert_tasks(
            sync_engine,
            tenant,
            str(project_id),
            [
                _task(
                    {"done": str(done)},
                    "done",
                    created_at=start,
                    completed_at=start + dt.timedelta(hours=h),
                )
                for h in hours
            ],
        )
        async with tenant_session(engine, tenant.record) as session:
            got = await StatsRepository(session).cycle_time(project_id)
            expected = (
                await session.execute(
                    text(
                        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY h),"
                        " percentile_cont(0.9) WITHIN GROUP (ORDER BY h) FROM ("
                        " SELECT extract(epoch FROM completed_at - created_at) / 3600.0 AS h"
                        f" FROM {quote_schema(schema)}.tasks"
                        " WHERE project_id = :p AND status_category = 'done') d"
                    ),
                    {"p": project_id},
                )
            ).one()
        assert got == (expected[0], round(expected[1], 2), round(expected[2], 2)), hours


async def test_a_project_stats_hit_reads_only_the_caller_and_a_deleted_project_is_404(
    app, client, make_tenant
):
    """On a hit the one statement left is authentication's (the caller's user row, which
    says whether the user is still active); a deleted project's entry is never served."""
    tenant = make_tenant("shit")
    headers = await login(client, tenant)
    project_id, _ = await _project(client, headers, "Hit")
    path = f"/api/v1/projects/{project_id}/stats"
    assert (await client.get(path, headers=headers)).headers["X-Cache"] == "miss"
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        hit = await client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert hit.headers["X-Cache"] == "hit"
    tables = [s for s in seen if re.search(r"\bFROM\b", s, re.IGNORECASE)]
    assert len(tables) == 1 and ".users" in tables[0], seen
    deleted = await client.delete(f"/api/v1/projects/{project_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await client.get(path, headers=headers), 404, "project-not-found")
