"""Test fixtures: real PostgreSQL and Redis, a throwaway database per run.

Services are found (or started) by backend.devservices exactly as `make dev` does; the suite
works in its own database ``tenantflow_test_<pid>`` (dropped at the end) and Redis db 15
(``TENANTFLOW_TEST_REDIS_DB`` picks another, so two checkouts can run their suites at once).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
import redis as redis_sync
from sqlalchemy.engine import make_url

from backend import devservices

if TYPE_CHECKING:
    from backend.notifications.sink import MailSink

PLATFORM_TOKEN = "test-platform-token-0123456789abcdef-xyz"
OWNER_PASSWORD = "correct-horse-battery"
BASE_DOMAIN = "tenantflow.test"
TEST_DB = f"tenantflow_test_{os.getpid()}"
TEST_REDIS_DB = int(os.environ.get("TENANTFLOW_TEST_REDIS_DB", "15"))


def _admin_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(False)


def pytest_configure(config: pytest.Config) -> None:
    found = devservices.ensure("var", database=TEST_DB, redis_db=TEST_REDIS_DB)
    for note in found.notes:
        print(note)
    os.environ.update(
        TENANTFLOW_ENV="test",
        TENANTFLOW_DATABASE_URL=found.database_url,
        TENANTFLOW_REDIS_URL=found.redis_url,
        TENANTFLOW_PLATFORM_TOKEN=PLATFORM_TOKEN,
        TENANTFLOW_BASE_DOMAIN=BASE_DOMAIN,
        # The whole suite talks from one client address; tests of the per-address lockout
        # make an app of their own with a low limit.
        TENANTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS="100000",
    )
    redis_sync.Redis.from_url(found.redis_url).flushdb()
    from backend.config import get_settings

    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    url = os.environ.get("TENANTFLOW_DATABASE_URL")
    if (
        not url
        or not make_url(url).database
        or not make_url(url).database.startswith("tenantflow_test_")
    ):
        return
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings() -> Any:
    from backend.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def sync_engine(settings: Any) -> Iterator[Any]:
    from backend.kit.db import make_engine
    from tenancy import migrate

    engine = make_engine(settings.database_url, pool_size=5)
    migrate.upgrade_shared(engine)
    _raise_plan_limits(engine)
    yield engine
    engine.dispose()


#: The plans as the migration seeded them (test_ratelimit checks them against the documented
#: defaults), before _raise_plan_limits.
SEEDED_PLANS: dict[str, dict[str, Any]] = {}
SUITE_LIMIT = 10**8


def _raise_plan_limits(engine: Any) -> None:
    """Every plan's per-minute limits far above what any test sends. The suite is one client
    address and a few users sending thousands of requests a minute; the limiter still checks
    and counts every request. Tests of the limits themselves set a tenant's overrides."""
    from sqlalchemy import select, update

    from backend.ratelimit.models import Plan

    with engine.begin() as conn:
        for row in conn.execute(select(Plan.__table__)).mappings():
            SEEDED_PLANS.setdefault(row["name"], dict(row))
        conn.execute(
            update(Plan.__table__).values(
                requests_per_minute=SUITE_LIMIT,
                user_requests_per_minute=SUITE_LIMIT,
                write_requests_per_minute=SUITE_LIMIT,
                auth_requests_per_minute=SUITE_LIMIT,
            )
        )


@pytest.fixture(scope="session")
def sync_redis(settings: Any) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@dataclass
class TenantHandle:
    record: Any
    slug: str
    email: str
    password: str

    @property
    def id(self) -> uuid.UUID:
        return self.record.id  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def make_tenant(sync_engine: Any, sync_redis: redis_sync.Redis) -> Any:
    """Create a fresh tenant (schema + owner) with a unique slug."""
    from backend.platform import service

    def make(prefix: str = "t", **kwargs: Any) -> TenantHandle:
        slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
        email = f"owner@{slug}.example.com"
        record = service.create_tenant(
            sync_engine,
            sync_redis,
            slug=slug,
            name=kwargs.get("name", slug.title()),
            plan=kwargs.get("plan", "free"),
            owner_email=email,
            owner_password=OWNER_PASSWORD,
        )
        return TenantHandle(record, slug, email, OWNER_PASSWORD)

    return make


@pytest.fixture(scope="session")
async def app(settings: Any, sync_engine: Any) -> AsyncIterator[Any]:
    from backend.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.local") as c:
        yield c


@pytest.fixture(scope="session")
def platform_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {PLATFORM_TOKEN}"}


async def login(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, str]:
    """Headers of the tenant's owner: X-Tenant and a bearer token."""
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": tenant.email, "password": tenant.password},
        headers={"X-Tenant": tenant.slug},
    )
    assert resp.status_code == 200, resp.text
    return {"X-Tenant": tenant.slug, "Authorization": f"Bearer {resp.json()['access_token']}"}


def assert_problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    if code is not None:
        assert body["type"].endswith("/" + code), body
    return body  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2 hash of OWNER_PASSWORD, reused for every seeded user (hashing is slow)."""
    from backend.identity.service import hash_password

    return hash_password(OWNER_PASSWORD)


@pytest.fixture(scope="session")
def add_user(sync_engine: Any, password_hash: str) -> Any:
    """Insert a user of ``role`` into the tenant's schema; returns (user id, email)."""
    from sqlalchemy import insert

    from backend.identity.models import User
    from tenancy.db import translate_map

    def add(
        tenant: TenantHandle, role: str, *, email: str | None = None, active: bool = True
    ) -> tuple[uuid.UUID, str]:
        user_id = uuid.uuid4()
        email = email or f"{role}-{user_id.hex[:8]}@{tenant.slug}.example.com"
        with sync_engine.begin() as conn:
            bound = conn.execution_options(
                schema_translate_map=translate_map(tenant.record.schema_name)
            )
            bound.execute(
                insert(User).values(
                    id=user_id,
                    email=email,
                    hashed_password=password_hash,
                    name=role.title(),
                    role=role,
                    is_active=active,
                    is_verified=True,
                )
            )
        return user_id, email

    return add


async def login_as(
    client: httpx.AsyncClient, tenant: TenantHandle, email: str, password: str = OWNER_PASSWORD
) -> dict[str, Any]:
    """The login response body of ``email`` (access and refresh token)."""
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": email, "password": password},
        headers={"X-Tenant": tenant.slug},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def bearer(tenant: TenantHandle, access_token: str) -> dict[str, str]:
    return {"X-Tenant": tenant.slug, "Authorization": f"Bearer {access_token}"}


# A real SMTP sink and a real Celery worker that sends to it (one each per test module).
RETRY_BASE = 0.5
RETRY_CAP = 1.5


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    from backend.notifications.sink import MailSink

    with MailSink(tmp_path_factory.mktemp("mail"), port=0) as running:
        yield running


@pytest.fixture(scope="module")
def worker(
    settings: Any, sync_engine: Any, sink: MailSink, tmp_path_factory: Any
) -> Iterator[Path]:
    from backend.workers.celery_app import worker_queues

    log = tmp_path_factory.mktemp("mail-worker") / "worker.log"
    env = {
        **os.environ,
        "TENANTFLOW_SMTP_HOST": sink.host,
        "TENANTFLOW_SMTP_PORT": str(sink.port),
        "TENANTFLOW_SMTP_TIMEOUT_SECONDS": "2",
        "TENANTFLOW_EMAIL_RETRY_BASE_SECONDS": str(RETRY_BASE),
        "TENANTFLOW_EMAIL_RETRY_MAX_SECONDS": str(RETRY_CAP),
    }
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backend.workers.celery_app",
        "worker",
        "-Q",
        ",".join(worker_queues(settings)),
        "-c",
        "2",
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"mail-{uuid.uuid4().hex[:6]}@%h",
        "-l",
        "INFO",
        "-f",
        str(log),
    ]
    proc = subprocess.Popen(argv, env=env, cwd=Path(__file__).parent.parent)
    try:
        assert wait_until(lambda: log.exists() and "ready." in log.read_text(), 60), (
            log.read_text() if log.exists() else "worker did not start"
        )
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    return predicate()
