"""Sign-in writes its session while the hash runs: only a right password keeps what it wrote.
And the hashing pool runs at most one hash per core."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from sqlalchemy import text

from backend.identity import passwords
from tests.conftest import assert_problem, login_as


def _rows(sync_engine, tenant, table: str) -> int:
    with sync_engine.connect() as conn:
        return conn.execute(
            text(f'SELECT count(*) FROM "{tenant.record.schema_name}".{table}')
        ).scalar_one()


async def _login(client, tenant, email, password):
    return await client.post(
        "/api/v1/auth/login",
        data={"username": email, "password": password},
        headers={"X-Tenant": tenant.slug},
    )


async def test_a_refused_login_leaves_no_session_behind(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("signin")
    _, inactive = add_user(tenant, "member", active=False)
    before = _rows(sync_engine, tenant, "refresh_tokens")
    assert_problem(await _login(client, tenant, tenant.email, "wrong-password-123"), 401)
    # A deactivated account with its right password is refused the same way.
    assert_problem(await _login(client, tenant, inactive, "correct-horse-battery"), 401)
    assert _rows(sync_engine, tenant, "refresh_tokens") == before
    with sync_engine.connect() as conn:
        actions = conn.execute(
            text(f'SELECT action FROM "{tenant.record.schema_name}".audit_events')
        ).scalars()
        assert sorted(actions) == ["login.failed", "login.failed"]
    await login_as(client, tenant, tenant.email)
    assert _rows(sync_engine, tenant, "refresh_tokens") == before + 1


async def test_concurrent_logins_each_get_their_own_session(client, make_tenant, sync_engine):
    tenant = make_tenant("signin-many")
    bodies = await asyncio.gather(*(login_as(client, tenant, tenant.email) for _ in range(6)))
    assert len({b["refresh_token"] for b in bodies}) == 6
    assert _rows(sync_engine, tenant, "refresh_tokens") == 6


async def test_the_hashing_pool_runs_one_hash_per_core():
    cores = len(os.sched_getaffinity(0))
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    await asyncio.gather(*(passwords.submit(work) for _ in range(cores * 3)))
    assert most == cores
