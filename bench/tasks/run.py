"""Benchmark: the tasks list and the stats endpoints on a tenant with 100k tasks.

Setup: one tenant (with its owner), ``--projects`` projects with the default statuses, and
``--tasks`` tasks (default 100k) seeded with one INSERT ... SELECT generate_series
(bench.tasks.seed), then VACUUM ANALYZE.

Measured, in-process over ASGI (httpx.ASGITransport, so no socket or server in the way), in
interleaved rounds whose order alternates:

* **list, full stack vs bare.** ``GET /api/v1/tasks?project_id=...&limit=50`` through
  ``create_app()`` with every middleware (request id, CORS, tenant resolution), bearer-token
  authentication and the permission check, against a bare FastAPI route that runs the same query
  (one project's tasks ordered by created_at, id, LIMIT 51, every column the API returns) on the
  same engine and returns the rows as JSON. If this checkout has no ``GET /api/v1/tasks`` yet, the
  full-stack side is ``GET /api/v1/projects/{id}/stats`` with a warm cache instead, against a
  bare route doing the same work (project lookup, cache read); the output says which
  (``compared=``).
* **stats, cached vs uncached.** ``GET /api/v1/projects/{id}/stats`` and
  ``GET /api/v1/analytics/tenant`` through the full app, once with a warm cache and once after
  a generation bump (outside the timing), so every uncached request computes from PostgreSQL.

Target: full-stack list throughput at least 0.6x the bare route's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, text

from backend.analytics.schemas import ProjectStats
from bench import BenchServices, Summary, figure, progress, ratio, throwaway_database, verdict

TARGET_RATIO = 0.6
OWNER_PASSWORD = "bench-correct-horse-battery"
LIST_LIMIT = 50


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tasks.run",
        description="Tasks list req/s through the full app against a bare route running the "
        "same query, and stats cached against uncached, on a tenant with many tasks.",
    )
    parser.add_argument("--tasks", type=int, default=None, help="tasks seeded (default 100000)")
    parser.add_argument("--projects", type=int, default=10, help="projects (default 10)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 10, quick 3)")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per path per round (default 100)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds (default 1)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20k tasks, 3 rounds of 20 requests"
    )
    args = parser.parse_args(argv)
    args.tasks = args.tasks or (20_000 if args.quick else 100_000)
    args.rounds = args.rounds or (3 if args.quick else 10)
    args.requests = args.requests or (20 if args.quick else 100)
    if args.tasks < args.projects or args.projects < 1 or args.rounds < 1 or args.requests < 2:
        parser.error("need --projects >= 1, --tasks >= --projects, --rounds >= 1, --requests >= 2")
    return args


def _setup(engine: Engine, services: BenchServices, args: argparse.Namespace) -> Any:
    """The tenant record and its project ids, with the tasks seeded and analysed."""
    import redis as redis_sync

    from backend.identity.models import User
    from backend.platform import service
    from backend.projects.models import DEFAULT_STATUSES, Project, ProjectStatus
    from bench.tasks.seed import seed_tasks
    from tenancy import migrate
    from tenancy.db import translate_map
    from tenancy.naming import quote_schema

    migrate.upgrade_shared(engine)
    redis = redis_sync.Redis.from_url(services.redis_url)
    try:
        record = service.create_tenant(
            engine,
            redis,
            slug="bench-tasks",
            name="Bench Tasks",
            plan="pro",
            owner_email="owner@bench-tasks.example.com",
            owner_password=OWNER_PASSWORD,
        )
    finally:
        redis.close()
    schema = record.schema_name
    projects = [uuid.uuid4() for _ in range(args.projects)]
    started = time.perf_counter()
    with engine.begin() as conn:
        bound = conn.execution_options(schema_translate_map=translate_map(schema))
        users = list(bound.execute(select(User.__table__.c.id)).scalars())
        for i, project_id in enumerate(projects):
            bound.execute(insert(Project).values(id=project_id, key=f"BT{i}", name=f"Bench {i}"))
            bound.execute(
                insert(ProjectStatus),
                [
                    {"project_id": project_id, "name": name, "category": cat, "position": pos}
                    for pos, (name, cat) in enumerate(DEFAULT_STATUSES)
                ],
            )
        seed_tasks(conn, schema, projects, users, args.tasks)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {quote_schema(schema)}.tasks"))
    progress(
        f"{args.tasks} tasks in {args.projects} projects seeded in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return record, projects


def _bare_app(resources: Any, record: Any) -> Any:
    """A FastAPI app with no middleware and no auth: the same queries on the same engine."""
    from fastapi import FastAPI

    from backend.analytics import cache
    from backend.analytics.repository import StatsRepository
    from backend.tasks.listing import DEFAULT_SORT, Sort
    from backend.tasks.models import Task
    from backend.tasks.repository import TaskRepository
    from tenancy.db import tenant_session

    bare = FastAPI()
    order = Sort(DEFAULT_SORT).order_by()

    @bare.get("/bare/tasks")
    async def bare_list(project_id: uuid.UUID, limit: int = LIST_LIMIT) -> dict[str, Any]:
        # The list endpoint's own query (TaskRepository.page_rows: the same SQL), its rows
        # returned as JSON with no validation.
        async with tenant_session(resources.engine, record) as session:
            rows = await TaskRepository(session).page_rows(
                filters=[Task.project_id == project_id], order=order, limit=limit + 1
            )
        return {"items": [dict(r._mapping) for r in rows[:limit]], "next_cursor": None}

    @bare.get("/bare/stats/{project_id}")
    async def bare_stats(project_id: uuid.UUID) -> ProjectStats:
        async with tenant_session(resources.engine, record) as session:
            repo = StatsRepository(session)
            await repo.project(project_id)

            async def compute() -> ProjectStats:
                raise RuntimeError("the bare stats route expects a warm cache")

            doc, _ = await cache.cached(
                resources.redis,
                record.id,
                ("project", str(project_id)),
                ProjectStats,
                compute,
                ttl=3600,
            )
        return doc

    return bare


async def _timed_batch(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    n: int,
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[float]:
    samples = []
    for _ in range(n):
        if before is not None:
            await before()
        started = time.perf_counter()
        resp = await client.get(url, headers=headers)
        samples.append(time.perf_counter() - started)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url}: {resp.status_code} {resp.text[:300]}")
    return samples


async def _measure(args: argparse.Namespace, record: Any, projects: list[uuid.UUID]) -> None:
    from backend.analytics.cache import invalidate
    from backend.config import get_settings
    from backend.main import create_app

    settings = get_settings().model_copy(
        update={"stats_cache_ttl_seconds": 3600, "log_level": "WARNING"}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        resources = app.state.resources
        full = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        bare = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_bare_app(resources, record)), base_url="http://b"
        )
        login = await full.post(
            "/api/v1/auth/login",
            data={"username": "owner@bench-tasks.example.com", "password": OWNER_PASSWORD},
            headers={"X-Tenant": record.slug},
        )
        headers = {
            "X-Tenant": record.slug,
            "Authorization": f"Bearer {login.json()['access_token']}",
        }
        project = projects[0]
        has_list = "get" in app.openapi()["paths"].get("/api/v1/tasks", {})
        stats_url = f"/api/v1/projects/{project}/stats"
        bare_list_url = f"/bare/tasks?project_id={project}&limit={LIST_LIMIT}"
        if has_list:
            compared = "tasks_list"
            full_url = f"/api/v1/tasks?project_id={project}&limit={LIST_LIMIT}"
            bare_url = bare_list_url
        else:
            compared = "project_stats_cached"
            full_url, bare_url = stats_url, f"/bare/stats/{project}"
            progress("GET /api/v1/tasks is not in this checkout: comparing the stats endpoint")

        async def bump() -> None:
            await invalidate(resources.redis, record.id)

        async def warm_only() -> None:
            return None

        paths: list[tuple[str, httpx.AsyncClient, str, Callable[[], Awaitable[None]]]] = [
            ("full", full, full_url, warm_only),
            ("bare", bare, bare_url, warm_only),
        ]
        if not has_list:  # the list query still runs, bare, so its cost is on record
            paths.append(("bare_list", bare, bare_list_url, warm_only))
        stats_paths = [
            ("project_cached", full, stats_url, warm_only),
            ("project_uncached", full, stats_url, bump),
            ("tenant_cached", full, "/api/v1/analytics/tenant", warm_only),
            ("tenant_uncached", full, "/api/v1/analytics/tenant", bump),
        ]
        samples: dict[str, list[float]] = {}
        elapsed: dict[str, float] = {}
        stats_n = max(5, args.requests // 5)
        for i in range(args.warmup + args.rounds):
            measuring = i >= args.warmup
            order = paths if i % 2 == 0 else paths[::-1]
            await full.get(stats_url, headers=headers)  # refill after the last round's bumps
            for key, client, url, _ in order:
                started = time.perf_counter()
                batch = await _timed_batch(client, url, headers, args.requests)
                if measuring:
                    elapsed[key] = elapsed.get(key, 0.0) + time.perf_counter() - started
                    samples.setdefault(key, []).extend(batch)
            for key, client, url, before in stats_paths if i % 2 == 0 else stats_paths[::-1]:
                if key.endswith("_cached"):
                    await client.get(url, headers=headers)  # (re)fill after a bump
                batch = await _timed_batch(client, url, headers, stats_n, before)
                if measuring:
                    samples.setdefault(key, []).extend(batch)
            progress(
                f"{'warmup' if not measuring else 'round'} {i + 1}/{args.warmup + args.rounds}"
            )
        await full.aclose()
        await bare.aclose()
    _report(args, compared, samples, elapsed)


def _report(
    args: argparse.Namespace,
    compared: str,
    samples: dict[str, list[float]],
    elapsed: dict[str, float],
) -> None:
    total = args.rounds * args.requests
    rate = {k: total / elapsed[k] for k in ("full", "bare")}
    print(
        f"tasks benchmark: tasks={args.tasks} projects={args.projects} rounds={args.rounds} "
        f"requests_per_round={args.requests} cpus={os.cpu_count()}",
        flush=True,
    )
    for key in ("full", "bare"):
        s = Summary.of(samples[key])
        figure(
            f"{compared}_{key}",
            [
                ("req_per_s", f"{rate[key]:.0f}"),
                ("p50_ms", f"{s.p50 * 1000:.2f}"),
                ("p95_ms", f"{s.p95 * 1000:.2f}"),
            ],
        )
    if "bare_list" in elapsed:
        s = Summary.of(samples["bare_list"])
        figure(
            "tasks_list_bare_only",
            [
                ("req_per_s", f"{total / elapsed['bare_list']:.0f}"),
                ("p50_ms", f"{s.p50 * 1000:.2f}"),
                ("p95_ms", f"{s.p95 * 1000:.2f}"),
            ],
        )
    full_vs_bare = rate["full"] / rate["bare"]
    figure(f"{compared}_full_vs_bare", [("ratio", f"{full_vs_bare:.2f}"), ("compared", compared)])
    for scope in ("project", "tenant"):
        cached = Summary.of(samples[f"{scope}_cached"])
        uncached = Summary.of(samples[f"{scope}_uncached"])
        for key, s in (("cached", cached), ("uncached", uncached)):
            figure(
                f"stats_{scope}_{key}",
                [("p50_ms", f"{s.p50 * 1000:.2f}"), ("p95_ms", f"{s.p95 * 1000:.2f}")],
            )
        figure(
            f"stats_{scope}_uncached_vs_cached", [("p50_ratio", ratio(uncached.p50, cached.p50))]
        )
    figure(
        "target_full_vs_bare_at_least_0.6",
        [(compared, f"{verdict(full_vs_bare >= TARGET_RATIO)}({full_vs_bare:.2f})")],
    )


def run(services: BenchServices, args: argparse.Namespace) -> None:
    from backend.config import get_settings
    from backend.kit.db import make_engine

    engine = make_engine(get_settings().database_url, pool_size=2, max_overflow=0)
    try:
        record, projects = _setup(engine, services, args)
    finally:
        engine.dispose()
    asyncio.run(_measure(args, record, projects))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_database() as services:
        run(services, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
