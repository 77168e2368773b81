"""Benchmarks of tenant provisioning, of migrating every tenant schema and of tenant login.

Each benchmark is a module with a ``run`` entry point (``python -m bench.provisioning.run``,
``python -m bench.migrate.run``, ``python -m bench.login.run``). This package holds what they
share: a throwaway database that is dropped even when the run fails, timing summaries, figures
printed as plain lines with a ratio against a baseline measured in the same run, and progress
on stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import redis as redis_sync
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB_PREFIX = "tenantflow_bench_"
#: Redis db of the benches (the suite's is 15, a developer's 0): emptied at every run's start.
BENCH_REDIS_DB = 14


# --- progress (stderr) -------------------------------------------------------------------------

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """One progress line on stderr, prefixed with the seconds since the run started."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


class Counter:
    """Counts finished items of a long phase; reports every ``every`` items and at the end."""

    def __init__(self, label: str, total: int, every: int = 100) -> None:
        self.label = label
        self.total = total
        self.every = max(1, every)
        self.done = 0
        self.started = time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            progress(f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s)")


# --- the throwaway database --------------------------------------------------------------------


@dataclass(frozen=True)
class BenchServices:
    database_url: str
    redis_url: str


def _admin_conninfo(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


def _raise_system_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def throwaway_database() -> Iterator[BenchServices]:
    """Create ``tenantflow_bench_<pid>``, point the settings at it, drop it on the way out.

    PostgreSQL and Redis are found as ``make dev`` finds them (backend.devservices); the
    settings' Redis is db ``BENCH_REDIS_DB``, emptied first (one bench at a time). The database
    is dropped whatever happens inside, SIGTERM included (turned into SystemExit here).
    """
    from backend import devservices
    from backend.config import get_settings

    name = f"{BENCH_DB_PREFIX}{os.getpid()}"
    found = devservices.ensure(ROOT / "var", database=name, redis_db=BENCH_REDIS_DB)
    for note in found.notes:
        progress(note)
    progress(f"database {name} created")
    # The bench's own Redis db, emptied: what an earlier run (of another, dropped database)
    # left there, such as the flags snapshot, must not be taken for this database's.
    redis_sync.Redis.from_url(found.redis_url).flushdb()
    progress(f"Redis db {BENCH_REDIS_DB} emptied")
    urls = {
        "TENANTFLOW_DATABASE_URL": found.database_url,
        "TENANTFLOW_REDIS_URL": found.redis_url,
    }
    previous = {var: os.environ.get(var) for var in urls}
    previous_term = signal.signal(signal.SIGTERM, _raise_system_exit)
    os.environ.update(urls)
    get_settings.cache_clear()
    try:
        yield BenchServices(found.database_url, found.redis_url)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        for var, value in previous.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        get_settings.cache_clear()
        database = make_url(found.database_url).database
        assert database == name and name.startswith(BENCH_DB_PREFIX)
        with psycopg.connect(_admin_conninfo(found.database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        progress(f"database {name} dropped")


# --- setup helpers -----------------------------------------------------------------------------


def provision_many(
    engine: Engine, slugs: Sequence[str], *, target: str, jobs: int, label: str
) -> float:
    """Create tenants (no owner) at ``target`` with ``jobs`` threads; returns the seconds taken.

    The engine's pool must allow ``jobs`` connections. Setup only: nothing here is a figure.
    """
    from tenancy import provisioning

    counter = Counter(label, len(slugs), every=max(1, len(slugs) // 10))

    def create(slug: str) -> None:
        provisioning.create_tenant(engine, slug=slug, name=slug.title(), target=target)

    started = time.perf_counter()
    if jobs <= 1:
        for slug in slugs:
            create(slug)
            counter.tick()
    else:
        with ThreadPoolExecutor(jobs) as pool:
            for _ in pool.map(create, slugs):
                counter.tick()
    return time.perf_counter() - started


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Latency summary of one measured path, in seconds."""

    n: int
    p50: float
    p95: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("no samples")
        if len(samples) == 1:
            return cls(1, samples[0], samples[0])
        p95 = statistics.quantiles(samples, n=20, method="inclusive")[-1]
        return cls(len(samples), statistics.median(samples), p95)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as a figure (``inf`` when the baseline is zero)."""
    return f"{value / baseline:.2f}" if baseline > 0 else "inf"


def figure(label: str, fields: Iterable[tuple[str, str]]) -> None:
    """One result line on stdout: a label, then ``key=value`` pairs."""
    print(f"{label:<34} " + " ".join(f"{k}={v}" for k, v in fields), flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def default_jobs() -> int:
    """The migrator's default worker count here: min(4, cores * 2)."""
    return min(4, (os.cpu_count() or 1) * 2)


# --- driving an app -----------------------------------------------------------------------------


async def asgi_call(
    app: Any, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> int:
    """``method path`` with ``body`` to ``app`` as one ASGI call; the response status.

    The same messages a server sends, with no HTTP client library in the timing (httpx's
    request building and response decoding cost about 1 ms here: a client's cost, not the
    route's)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"api.local"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("api.local", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app works
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def alternating(
    calls: Mapping[str, Callable[[], Any]], seconds: float, in_flight: int = 8
) -> dict[str, list[float]]:
    """Seconds each call took, per label: ``in_flight`` workers each call every label in turn
    (the order rotating) until ``seconds`` have passed. Interleaving request by request puts
    every label on the same machine at the same moments, so the noise of a shared machine
    (another process taking a core for a second) falls on all of them alike. Each call returns
    an HTTP status; anything but 200 ends the run."""
    taken: dict[str, list[float]] = {label: [] for label in calls}
    labels = list(calls)
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        turn = offset
        while time.perf_counter() < stop:
            label = labels[turn % len(labels)]
            turn += 1
            started = time.perf_counter()
            status = await calls[label]()
            taken[label].append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{label}: status {status}")

    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    return taken


# --- tenants for the API benchmarks ------------------------------------------------------------

BENCH_PASSWORD = "bench-correct-horse-battery"
#: Per-minute limits far above any bench's load, so that every figure is the route's own (the
#: limiter still checks and counts every request).
UNLIMITED = 10**8


def bench_tenant(
    engine: Engine, redis: Any, slug: str, *, tenant_quota: int | None = UNLIMITED
) -> Any:
    """An enterprise tenant with an owner (``owner@<slug>.example.com``, BENCH_PASSWORD) and
    its rate limits raised far above the load (the tenant limit left at the plan's when
    ``tenant_quota`` is None)."""
    from backend.platform import service
    from backend.ratelimit import service as limits
    from backend.ratelimit.schemas import LimitsIn

    record = service.create_tenant(
        engine,
        redis,
        slug=slug,
        name=slug,
        plan="enterprise",
        owner_email=f"owner@{slug}.example.com",
        owner_password=BENCH_PASSWORD,
    )
    raised = LimitsIn(
        requests_per_minute=tenant_quota,
        user_requests_per_minute=UNLIMITED,
        write_requests_per_minute=UNLIMITED,
        auth_requests_per_minute=UNLIMITED,
    )
    limits.put_limits(engine, redis, slug, raised, actor="bench")
    return record


async def bench_login(http: Any, slug: str) -> dict[str, str]:
    """The owner's headers (X-Tenant and a bearer token), through ``http`` (an httpx client)."""
    resp = await http.post(
        "/api/v1/auth/login",
        data={"username": f"owner@{slug}.example.com", "password": BENCH_PASSWORD},
        headers={"X-Tenant": slug},
    )
    resp.raise_for_status()
    return {"X-Tenant": slug, "Authorization": f"Bearer {resp.json()['access_token']}"}
