"""The event pipeline end to end: outbox -> relay -> tenant queues -> a real Celery worker ->
handlers with an inbox, retries and dead letters; the projection; duplicates and tenants."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select

from backend.events import inflight, outbox
from backend.events.models import DeadLetter, InboxEntry, OutboxEvent
from backend.events.relay import Relay
from backend.projects.models import Project
from backend.workers.celery_app import celery_app, worker_queues
from tenancy.context import bind_tenant
from tenancy.db import sync_tenant_session
from tests.conftest import wait_until
from tests.event_handlers import DoomedProbe, Probe

RETRIES = 2


@pytest.fixture(scope="module")
def events_worker(settings, sync_engine, tmp_path_factory) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("events-worker") / "worker.log"
    env = {
        **os.environ,
        "TENANTFLOW_EVENT_MAX_RETRIES": str(RETRIES),
        "TENANTFLOW_EVENT_RETRY_BASE_SECONDS": "0.2",
        "TENANTFLOW_EVENT_RETRY_MAX_SECONDS": "0.5",
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
        f"events-{uuid.uuid4().hex[:6]}@%h",
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


class RunningRelay:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stop = threading.Event()
        self.thread = threading.Thread(target=relay.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self.relay

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def relay(settings, sync_engine, sync_redis) -> Iterator[Relay]:
    with RunningRelay(Relay(settings, sync_engine, sync_redis, celery_app)) as running:
        yield running


def _project(sync_engine, tenant) -> uuid.UUID:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        project = Project(name="Probe", key="PRB" + uuid.uuid4().hex[:4].upper(), description="")
        session.add(project)
        session.commit()
        return project.id


def _record(sync_engine, tenant, *events: Any) -> list[uuid.UUID]:
    """Record events in one tenant transaction (as a service does); their ids."""
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        rows = [outbox.row_of(e) for e in events]
        session.add_all(rows)
        session.commit()
        return [r.id for r in rows]


def _description(sync_engine, tenant, project_id: uuid.UUID) -> str:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        return session.execute(
            select(Project.description).where(Project.id == project_id)
        ).scalar_one()


def _inbox(sync_engine, tenant) -> list[tuple[uuid.UUID, str]]:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        return [tuple(r) for r in session.execute(select(InboxEntry.event_id, InboxEntry.handler))]


def test_events_reach_their_handler_once_and_are_marked_published(
    events_worker, relay, make_tenant, sync_engine
):
    tenant = make_tenant("evt")
    project_id = _project(sync_engine, tenant)
    ids = _record(sync_engine, tenant, *(Probe(project_id=project_id) for _ in range(5)))
    assert wait_until(lambda: _description(sync_engine, tenant, project_id) == "x" * 5, 30)
    assert sorted(_inbox(sync_engine, tenant)) == sorted((i, "tests.append") for i in ids)
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        unpublished = session.execute(
            select(OutboxEvent.id).where(OutboxEvent.published_at.is_(None))
        ).all()
    assert unpublished == []


def test_a_message_delivered_three_times_has_its_effect_once(
    events_worker, make_tenant, sync_engine
):
    from backend.events.jobs import handle

    tenant = make_tenant("evt-dup")
    project_id = _project(sync_engine, tenant)
    [event_id] = _record(sync_engine, tenant, Probe(project_id=project_id, mark="y"))
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        row = session.execute(select(OutboxEvent).where(OutboxEvent.id == event_id)).scalar_one()
        doc = outbox.envelope(row, tenant.id)
    for _ in range(3):  # no relay here: the same message, sent three times
        handle.apply_async(args=[doc, "tests.append"], tenant=tenant.record)
    assert wait_until(lambda: _inbox(sync_engine, tenant), 30)
    time.sleep(1.0)  # let the other two copies arrive and be skipped
    assert _description(sync_engine, tenant, project_id) == "y"
    assert _inbox(sync_engine, tenant) == [(event_id, "tests.append")]


def test_a_handler_that_always_fails_ends_in_the_dead_letters(
    events_worker, relay, make_tenant, sync_engine
):
    tenant = make_tenant("evt-dlq")
    project_id = _project(sync_engine, tenant)
    [event_id] = _record(sync_engine, tenant, DoomedProbe(project_id=project_id))

    def letters() -> list[DeadLetter]:
        with sync_engine.connect() as conn:
            return list(
                conn.execute(select(DeadLetter).where(DeadLetter.tenant_id == tenant.id)).all()
            )

    found = wait_until(letters, 30)
    assert found, "no dead letter"
    [letter] = found
    assert letter.event_id == event_id and letter.handler == "tests.always_fails"
    assert letter.attempts == RETRIES + 2  # its batch, then the single delivery and retries
    assert "probe handler refuses" in letter.error
    assert letter.envelope["type"] == "DoomedProbe"
    # The failed attempts left nothing behind but the entry that settles the event.
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        entries = session.execute(
            select(InboxEntry.event_id, InboxEntry.handler, InboxEntry.outcome)
        ).all()
    assert [tuple(e) for e in entries] == [(event_id, "tests.always_fails", "dead-lettered")]


def test_events_written_while_no_relay_runs_are_found_by_its_sweep(
    events_worker, settings, sync_engine, sync_redis, make_tenant
):
    tenant = make_tenant("evt-late")
    project_id = _project(sync_engine, tenant)
    _record(sync_engine, tenant, Probe(project_id=project_id, mark="z"))
    time.sleep(0.3)  # the notification went to nobody
    with RunningRelay(Relay(settings, sync_engine, sync_redis, celery_app)):
        assert wait_until(lambda: _description(sync_engine, tenant, project_id) == "z", 30)


def test_the_task_counts_projection_and_its_rebuild(
    events_worker, relay, make_tenant, sync_engine, sync_redis
):
    from backend.analytics import projection
    from backend.events.models import ProjectTaskCount
    from backend.events.types import TaskCreated
    from backend.projects.models import ProjectStatus
    from tests.test_stats import _task, insert_tasks

    tenant = make_tenant("evt-proj")
    project_id = _project(sync_engine, tenant)
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        session.add_all(
            [
                ProjectStatus(project_id=project_id, name=n, category=c, position=i)
                for i, (n, c) in enumerate((("To do", "todo"), ("Done", "done")))
            ]
        )
        session.commit()
        statuses = {
            s.category: str(s.id)
            for s in session.execute(
                select(ProjectStatus).where(ProjectStatus.project_id == project_id)
            ).scalars()
        }
    insert_tasks(
        sync_engine,
        tenant,
        str(project_id),
        [_task(statuses, "todo"), _task(statuses, "todo"), _task(statuses, "done")],
    )

    def counts() -> dict[str, int]:
        with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
            return {
                c: n
                for c, n in session.execute(
                    select(ProjectTaskCount.category, ProjectTaskCount.count).where(
                        ProjectTaskCount.project_id == project_id
                    )
                ).all()
            }

    from tenancy import keys

    generation = keys.stats_generation_key(tenant.id)
    before = int(sync_redis.get(generation) or 0)
    # A task event makes the handler recount the project from its tasks, and the tenant's
    # cached stats stale once the recount committed.
    _record(
        sync_engine,
        tenant,
        TaskCreated(
            task_id=uuid.uuid4(),
            project_id=project_id,
            key="PRB-1",
            title="t",
            status_id=uuid.UUID(statuses["todo"]),
            status_category="todo",
            priority="none",
            assignee_id=None,
            parent_id=None,
        ),
    )
    assert wait_until(lambda: counts() == {"todo": 2, "done": 1}, 30), counts()
    assert wait_until(lambda: int(sync_redis.get(generation) or 0) > before, 10)
    # The rebuild recomputes the same and marks the projection built.
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        session.execute(delete(ProjectTaskCount))
        assert projection.rebuild(session) == 1
        session.commit()
        assert session.execute(projection.built_query()).first() is not None
    assert counts() == {"todo": 2, "done": 1}


def test_a_tenant_queue_carries_only_its_tenants_events(
    events_worker, relay, make_tenant, sync_engine
):
    a, b = make_tenant("evt-a"), make_tenant("evt-b")
    pa, pb = _project(sync_engine, a), _project(sync_engine, b)
    _record(sync_engine, a, Probe(project_id=pa, mark="a"))
    _record(sync_engine, b, Probe(project_id=pb, mark="b"))
    # A's event names B's project: handled in A's schema, it finds no such project.
    _record(sync_engine, a, Probe(project_id=pb, mark="!"))
    assert wait_until(lambda: len(_inbox(sync_engine, a)) == 2, 30)
    assert wait_until(lambda: len(_inbox(sync_engine, b)) == 1, 30)
    assert _description(sync_engine, a, pa) == "a"
    assert _description(sync_engine, b, pb) == "b"


def test_a_capped_tenant_that_writes_goes_first_and_capped_ones_cost_no_query(
    settings, sync_engine, sync_redis, make_tenant
):
    """Tenants whose handler work is held back by the in-flight cap stay in the relay's line.
    One of them that writes again goes to the front (its live feed is due now); the others
    cost no database statement per turn until a slot frees."""
    relay = Relay(settings, sync_engine, sync_redis, celery_app)
    tenants = [make_tenant(f"front-{i}") for i in range(3)]
    holds = []
    for tenant in tenants:
        _record(sync_engine, tenant, Probe(project_id=_project(sync_engine, tenant), mark="x"))
        with sync_redis.pipeline() as pipe:
            inflight.add(pipe, tenant.record.id, (f"hold-{i}" for i in range(8)))
            pipe.execute()
        holds.append(inflight._key(tenant.record.id))
    statements: list[str] = []

    def seen(conn, cursor, statement, *args: object) -> None:
        statements.append(statement)

    try:
        with relay._listen() as listener:
            relay._check([t.record for t in tenants])  # as a sweep finds them
            for tenant in tenants:  # published live; handler work held back by the cap
                assert relay.relay_batch(tenant.record) is True
            assert list(relay.pending) == [t.record.id for t in tenants]
            last = tenants[-1]
            _record(sync_engine, last, Probe(project_id=_project(sync_engine, last), mark="y"))
            relay._wake(listener, timeout=5.0)
            assert next(iter(relay.pending)) == last.record.id
            event.listen(sync_engine, "before_cursor_execute", seen)
            try:
                assert relay.relay_batch(tenants[0].record) is True
            finally:
                event.remove(sync_engine, "before_cursor_execute", seen)
            assert statements == []
    finally:
        sync_redis.delete(*holds)


def test_a_tenant_without_an_outbox_does_not_stop_the_relay(
    settings, sync_engine, sync_redis, make_tenant
):
    """A tenant still behind the migration that creates the outbox (a rollout in progress)
    is left out of the relay's statements over many schemas instead of failing them all."""
    from tenancy import migrate, provisioning
    from tenancy import registry as tenants
    from tenancy.registry import Tenant

    behind = provisioning.create_tenant(
        sync_engine, slug=f"old-{uuid.uuid4().hex[:8]}", name="Old", target="0005"
    )
    tenant = make_tenant("beside-old")
    _record(sync_engine, tenant, Probe(project_id=_project(sync_engine, tenant), mark="x"))
    # And a registry row at head whose schema is gone (a broken tenant).
    broken_id = uuid.uuid4()
    with sync_engine.begin() as conn:
        conn.execute(
            insert(Tenant).values(
                id=broken_id,
                slug=f"gone-{uuid.uuid4().hex[:8]}",
                name="Gone",
                schema_name=f"t_gone_{uuid.uuid4().hex}",
                schema_revision=migrate.head("tenant"),
            )
        )
        broken = tenants.get_by_id(conn, broken_id)
        assert broken is not None and broken.status == "active"
    try:
        relay = Relay(settings, sync_engine, sync_redis, celery_app)
        for batch in ([behind, tenant.record], [broken, tenant.record]):
            relay.pending.clear()
            relay._check(batch)
            relay._settle(batch)
            relay._prune(batch)
            assert list(relay.pending) == [tenant.record.id]
    finally:
        with sync_engine.begin() as conn:
            conn.execute(delete(Tenant).where(Tenant.id == broken_id))


def test_tenant_revisions_compare_in_order():
    """backend.events.relay.with_outbox compares tenant revisions as strings."""
    from pathlib import Path

    versions = Path(__file__).resolve().parent.parent / "migrations" / "tenant" / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    revisions = [n.split("_", 1)[0] for n in names]
    assert all(len(r) == 4 and r.isdigit() for r in revisions), revisions
    assert revisions == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
