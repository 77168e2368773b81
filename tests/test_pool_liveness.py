"""Pooled connections the server has ended are never handed out (backend.kit.db._refuse_dead).

The server ends connections on a restart, a failover or ``pg_terminate_backend``; the next
checkout must give a working connection, and the request using it must not fail.
"""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.kit.db import make_async_engine, make_engine
from tests.conftest import login


def _terminate(settings, pids: set[int]) -> None:
    url = make_url(settings.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(False), autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # pg_terminate_backend signals; wait until the backends are gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
            ).fetchone()
            if alive is not None and alive[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError(f"backends {pids} still alive")


def test_sync_engine_replaces_a_terminated_connection(settings):
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            old = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _terminate(settings, {old})
        with engine.connect() as conn:
            new = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert new != old
    finally:
        engine.dispose()


async def test_async_engine_replaces_a_terminated_connection(settings):
    engine = make_async_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            old = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        _terminate(settings, {old})
        async with engine.connect() as conn:
            new = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new != old
    finally:
        await engine.dispose()


async def test_requests_survive_the_server_ending_every_pooled_connection(
    settings, client, app, make_tenant
):
    tenant = make_tenant("liveness")
    headers = await login(client, tenant)
    engine = app.state.resources.engine
    # Check out every connection the pool holds at once, so each one's pid is known.
    pool_pids: set[int] = set()
    conns = [await engine.connect() for _ in range(engine.pool.checkedin() or 1)]
    try:
        for conn in conns:
            pool_pids.add((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    finally:
        for conn in conns:
            await conn.close()
    _terminate(settings, pool_pids)
    for _ in range(3):
        resp = await client.get("/api/v1/users/me", headers=headers)
        assert resp.status_code == 200, resp.text
