"""A change and its event commit together or not at all, even when the process dies.

A child process makes a change and records its event in one tenant transaction, and kills
itself with SIGKILL at a chosen step: after the change reached PostgreSQL (flushed, not
committed), right before COMMIT is sent, or right after COMMIT returned. The parent then
looks: never a change without its event, never an event without its change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.events.models import OutboxEvent
from backend.projects.models import Project
from tenancy.context import bind_tenant
from tenancy.db import sync_tenant_session

ROOT = Path(__file__).parent.parent

CHILD = textwrap.dedent(
    """
    import os, signal, sys, uuid
    from sqlalchemy import event
    import backend.models  # noqa: F401
    from backend.config import get_settings
    from backend.events import outbox
    from backend.events.types import ProjectCreated
    from backend.kit.db import make_engine
    from backend.projects.models import Project
    from tenancy import registry
    from tenancy.context import bind_tenant
    from tenancy.db import sync_tenant_session

    tenant_id, project_id, step = uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2]), sys.argv[3]
    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        tenant = registry.get_by_id(conn, tenant_id)

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    with bind_tenant(tenant), sync_tenant_session(engine) as session:
        if step == "before-commit":
            event.listen(session, "before_commit", lambda s: (s.flush(), die()))
        elif step == "after-commit":
            event.listen(session, "after_commit", die)
        session.add(Project(id=project_id, name="Atomic", key="ATM", description=""))
        if step == "after-change":
            session.flush()  # the change is in PostgreSQL, uncommitted; no event yet
            die()
        outbox.record(session, ProjectCreated(project_id=project_id, key="ATM", name="Atomic"))
        session.commit()
    """
)


def _state(sync_engine, tenant, project_id: uuid.UUID) -> tuple[int, int]:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        changes = session.execute(select(func.count()).where(Project.id == project_id)).scalar_one()
        events = session.execute(
            select(func.count()).where(OutboxEvent.aggregate_id == project_id)
        ).scalar_one()
    return int(changes), int(events)


@pytest.mark.parametrize(
    ("step", "committed"),
    [("after-change", False), ("before-commit", False), ("after-commit", True)],
)
def test_a_process_killed_between_commit_steps_leaves_both_or_neither(
    make_tenant, sync_engine, step, committed
):
    tenant = make_tenant("atomic")
    project_id = uuid.uuid4()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tenant.id), str(project_id), step],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert _state(sync_engine, tenant, project_id) == ((1, 1) if committed else (0, 0))
