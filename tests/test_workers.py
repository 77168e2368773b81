"""A real Celery worker: tenant hand-off in headers, partition queues, platform jobs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from backend.projects.models import Project
from backend.workers.celery_app import celery_app, worker_queues
from tenancy import keys, provisioning
from tenancy.context import TenantNotBound, bind_tenant
from tenancy.db import sync_tenant_session
from tests.celery_tasks import write_canary
from tests.conftest import assert_problem

PINNED = "vip"


@pytest.fixture(scope="module")
def worker(settings, sync_engine, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    queues = worker_queues(settings, pinned=[PINNED])
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backend.workers.celery_app",
        "worker",
        "-I",
        "tests.celery_tasks",
        "-Q",
        ",".join(queues),
        "-c",
        "2",
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"test-{uuid.uuid4().hex[:6]}@%h",
        "-l",
        "INFO",
        "-f",
        str(log),
    ]
    proc = subprocess.Popen(argv, env=os.environ.copy(), cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and "ready." in log.read_text():
            break
        if proc.poll() is not None:
            pytest.fail(f"worker exited: {log.read_text() if log.exists() else ''}")
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("worker did not become ready")
    yield log
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def _names(engine, tenant) -> list[str]:
    with sync_tenant_session(engine, tenant.record) as session:
        return list(session.scalars(select(Project.name)).all())


def test_task_runs_bound_to_its_tenant_on_its_partition(worker, sync_engine, make_tenant, settings):
    a, b = make_tenant("wk-a"), make_tenant("wk-b")
    with bind_tenant(a.record):
        write_canary.delay("job-a")
    with bind_tenant(b.record):
        write_canary.delay("job-b")
    names_a = _wait_for(lambda: _names(sync_engine, a))
    names_b = _wait_for(lambda: _names(sync_engine, b))
    queue_a = keys.queue_for(a.id, settings.queue_partitions)
    queue_b = keys.queue_for(b.id, settings.queue_partitions)
    assert names_a == [f"job-a|{a.slug}|{queue_a}"]
    assert names_b == [f"job-b|{b.slug}|{queue_b}"]


def test_pinned_tenant_uses_its_queue(worker, sync_engine, sync_redis, make_tenant):
    tenant = make_tenant("wk-pin")
    record = provisioning.update_tenant(
        sync_engine, tenant.slug, {"queue": PINNED}, redis=sync_redis
    )
    with bind_tenant(record):
        write_canary.delay("pinned")
    names = _wait_for(lambda: _names(sync_engine, tenant))
    assert names == [f"pinned|{tenant.slug}|tf.pinned.{PINNED}"]


def test_sending_without_a_tenant_fails():
    with pytest.raises(TenantNotBound):
        write_canary.delay("nobody")


def _tenants_with_project(engine, prefix: str) -> list[str]:
    """Slugs of every tenant (any schema) holding a project whose name starts with prefix."""
    from tenancy import registry

    with engine.connect() as conn:
        records = registry.list_tenants(conn, limit=100_000, status="active")
        with_projects = set(
            conn.execute(
                text("SELECT table_schema FROM information_schema.tables WHERE table_name = :t"),
                {"t": "projects"},
            ).scalars()
        )
    found = []
    for record in [r for r in records if r.schema_name in with_projects]:
        with sync_tenant_session(engine, record) as session:
            if session.scalar(select(Project.id).where(Project.name.startswith(prefix))):
                found.append(record.slug)
    return found


def test_message_without_tenant_header_fails_in_worker(worker, sync_engine, make_tenant):
    # The worker processes have just run a task bound to this tenant: a binding that leaked
    # from it, or any fallback tenant, would make the header-less task write somewhere.
    tenant = make_tenant("wk-nohdr")
    with bind_tenant(tenant.record):
        for _ in range(2):  # prefork -c 2: likely both child processes
            write_canary.delay("warm-up")
    assert _wait_for(lambda: len(_names(sync_engine, tenant)) == 2)
    label = f"nohdr-{uuid.uuid4().hex[:6]}"
    sent = celery_app.send_task("tests.write_canary", args=[label], queue=keys.partition_queue(0))
    assert _wait_for(lambda: f"{sent.id}] raised unexpected: TenantNotBound" in worker.read_text())
    assert _tenants_with_project(sync_engine, label) == []


def test_task_of_suspended_tenant_fails(worker, sync_engine, sync_redis, make_tenant):
    tenant = make_tenant("wk-susp")
    provisioning.set_status(sync_engine, tenant.slug, "suspended", redis=sync_redis)
    # The sender still holds the active record; the worker reads the registry and refuses.
    result = write_canary.apply_async(("while-suspended",), tenant=tenant.record)
    assert _wait_for(
        lambda: f"{result.id}] raised unexpected: TenantInactive" in worker.read_text()
    )
    assert _names(sync_engine, tenant) == []


async def test_delete_drops_schema_in_worker(
    worker, client, platform_headers, make_tenant, sync_engine
):
    tenant = make_tenant("wk-del")
    resp = await client.delete(f"/platform/v1/tenants/{tenant.slug}", headers=platform_headers)
    assert resp.status_code == 202

    def gone() -> bool:
        with sync_engine.connect() as conn:
            row = conn.execute(
                text("SELECT 1 FROM tf_shared.tenants WHERE slug = :s"), {"s": tenant.slug}
            ).first()
            schema = conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                {"s": tenant.record.schema_name},
            ).first()
        return row is None and schema is None

    assert await asyncio.to_thread(_wait_for, gone)
    resp = await client.get(f"/platform/v1/tenants/{tenant.slug}", headers=platform_headers)
    assert_problem(resp, 404)
