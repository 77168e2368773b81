"""Faults the event pipeline survives without losing or doubling an effect: a worker killed
with SIGKILL mid-batch, Redis (the broker) restarted empty, PostgreSQL connections dropped.

Every test sends ``Probe`` events (tests/event_handlers.py): their handler appends one
character to a project's description, so an event handled twice would show as an extra
character, and a lost one as a missing character.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis as redis_sync
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from backend.events.models import InboxEntry
from backend.events.relay import Relay
from tenancy.context import bind_tenant
from tenancy.db import sync_tenant_session
from tests.conftest import wait_until
from tests.event_handlers import Probe
from tests.test_events_pipeline import RunningRelay, _description, _project, _record

ROOT = Path(__file__).parent.parent
#: Short enough for a test to wait out: unacknowledged messages come back after this long.
VISIBILITY = 5
REDELIVER = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _worker(settings, redis_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    from backend.workers.celery_app import worker_queues

    env = {
        **os.environ,
        "TENANTFLOW_REDIS_URL": redis_url,
        "TENANTFLOW_BROKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
        "TENANTFLOW_EVENT_RETRY_BASE_SECONDS": "0.2",
        "TENANTFLOW_EVENT_RETRY_MAX_SECONDS": "1",
        "TENANTFLOW_EVENT_MAX_RETRIES": "10",
    }
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backend.workers.celery_app",
        "worker",
        "-I",
        "tests.event_handlers",
        "-Q",
        ",".join(worker_queues(settings)),
        "-c",
        "2",
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"faults-{uuid.uuid4().hex[:6]}@%h",
        "-l",
        "INFO",
        "-f",
        str(log),
    ]
    start = log.stat().st_size if log.exists() else 0
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
    try:
        assert wait_until(lambda: log.exists() and "ready." in log.read_text()[start:], 60), (
            "worker did not start"
        )
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _relay(settings, sync_engine, redis_url: str) -> RunningRelay:
    from backend.workers.celery_app import create_celery

    tuned = settings.model_copy(
        update={
            "redis_url": redis_url,
            "event_redeliver_after_seconds": REDELIVER,
            "relay_sweep_seconds": 0.5,
            "relay_sweep_tenants": 100_000,
            "broker_visibility_timeout_seconds": VISIBILITY,
        }
    )
    client = redis_sync.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return RunningRelay(Relay(tuned, sync_engine, client, create_celery(tuned)))


def _handled(sync_engine, tenant) -> int:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        return int(session.execute(select(func.count()).select_from(InboxEntry)).scalar_one())


def _exactly_once(sync_engine, tenant, project_id: uuid.UUID, n: int) -> None:
    assert wait_until(lambda: _handled(sync_engine, tenant) >= n, 60), _handled(sync_engine, tenant)
    time.sleep(1.0)  # any duplicate still in flight lands meanwhile
    assert _handled(sync_engine, tenant) == n
    assert _description(sync_engine, tenant, project_id) == "x" * n


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    settings, sync_engine, make_tenant, tmp_path
):
    tenant = make_tenant("flt-kill")
    project_id = _project(sync_engine, tenant)
    log = tmp_path / "worker.log"
    n = 1000
    with _relay(settings, sync_engine, settings.redis_url):
        with _worker(settings, settings.redis_url, log) as first:
            _record(sync_engine, tenant, *(Probe(project_id=project_id) for _ in range(n)))
            assert wait_until(lambda: _handled(sync_engine, tenant) >= 100, 60)
            os.killpg(first.pid, signal.SIGKILL)  # the pool's children too, mid-transaction
            first.wait(10)
        done_when_killed = _handled(sync_engine, tenant)
        assert done_when_killed < n, "the batch finished before the kill: make it bigger"
        with _worker(settings, settings.redis_url, log):
            _exactly_once(sync_engine, tenant, project_id, n)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A Redis server of this test's own (it gets restarted), keeping nothing on disk."""
    port = _free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL)]
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_sync.Redis.from_url(url)
    assert wait_until(lambda: _ping(client), 10)
    try:
        yield url, procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)


def _ping(client: redis_sync.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_sync.RedisError:
        return False


def test_a_redis_restart_mid_run_loses_nothing(
    settings, sync_engine, make_tenant, tmp_path, own_redis
):
    url, procs = own_redis
    tenant = make_tenant("flt-redis")
    project_id = _project(sync_engine, tenant)
    n = 300
    with _relay(settings, sync_engine, url), _worker(settings, url, tmp_path / "w.log"):
        _record(sync_engine, tenant, *(Probe(project_id=project_id) for _ in range(n)))
        assert wait_until(lambda: _handled(sync_engine, tenant) >= 30, 60)
        procs[0].kill()  # every queued message and in-flight counter is gone with it
        procs[0].wait(5)
        time.sleep(1.0)
        procs.append(subprocess.Popen(procs[0].args, stdout=subprocess.DEVNULL))
        _exactly_once(sync_engine, tenant, project_id, n)


def test_dropped_postgresql_connections_mid_run_lose_nothing(
    settings, sync_engine, make_tenant, tmp_path
):
    tenant = make_tenant("flt-pg")
    project_id = _project(sync_engine, tenant)
    n = 300
    database = make_url(settings.database_url).database
    admin_url = make_url(settings.database_url).set(drivername="postgresql", database="postgres")
    with (
        _relay(settings, sync_engine, settings.redis_url),
        _worker(settings, settings.redis_url, tmp_path / "w.log"),
    ):
        _record(sync_engine, tenant, *(Probe(project_id=project_id) for _ in range(n)))
        assert wait_until(lambda: _handled(sync_engine, tenant) >= 30, 60)
        with psycopg.connect(admin_url.render_as_string(False), autocommit=True) as admin:
            for _ in range(3):  # every connection of the test database: workers and relay
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
                time.sleep(0.5)
        _exactly_once(sync_engine, tenant, project_id, n)
