"""API connections time out on locks and long statements: 503 tenant-busy, not a starved pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.kit.resources import Resources
from tests.conftest import assert_problem, login


@contextmanager
def table_locked(settings, schema: str, table: str) -> Iterator[None]:
    """Hold ACCESS EXCLUSIVE on a tenant table in another connection, as a migration does."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(False)) as conn:
        conn.execute(f'LOCK TABLE "{schema}"."{table}" IN ACCESS EXCLUSIVE MODE')
        yield
        conn.rollback()


@pytest.mark.parametrize(
    "timeouts",
    [
        {"db_lock_timeout_ms": 200},  # LockNotAvailable
        {"db_lock_timeout_ms": 0, "db_statement_timeout_ms": 300},  # QueryCanceled
    ],
    ids=["lock-timeout", "statement-timeout"],
)
async def test_locked_tenant_table_is_503_tenant_busy(settings, client, make_tenant, timeouts):
    from backend.main import create_app

    tenant = make_tenant("busy")
    headers = await login(client, tenant)
    app = create_app(settings.model_copy(update=timeouts))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://x") as c,
    ):
        # Without the timeouts the request would wait for the lock as long as it is held.
        with table_locked(settings, tenant.record.schema_name, "projects"):
            async with asyncio.timeout(10):
                resp = await c.get("/api/v1/projects", headers=headers)
            body = assert_problem(resp, 503, "tenant-busy")
            assert resp.headers["retry-after"] and body["request_id"]
            async with asyncio.timeout(10):
                created = await c.post("/api/v1/projects", json={"name": "x"}, headers=headers)
            assert_problem(created, 503, "tenant-busy")
        resp = await c.get("/api/v1/projects", headers=headers)
        assert resp.status_code == 200 and resp.json()["items"] == []


async def test_api_engines_carry_timeouts_and_the_migrator_does_not(settings, sync_engine):
    res = Resources.open(
        settings.model_copy(update={"db_lock_timeout_ms": 1234, "db_statement_timeout_ms": 5678})
    )
    try:
        async with res.engine.connect() as conn:
            assert (await conn.execute(text("SHOW lock_timeout"))).scalar() == "1234ms"
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar() == "5678ms"
        with res.sync_engine.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "1234ms"
    finally:
        await res.close()
    with sync_engine.connect() as conn:  # the engine migrations and provisioning tests use
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "0"
    assert settings.db_lock_timeout_ms == 5000 and settings.db_statement_timeout_ms == 30_000
