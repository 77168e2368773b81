"""The task-counts projection: how many tasks each project has in each status.

Kept by event handlers (backend/events/registry.py) and rebuilt by ``tenantflow projections
rebuild``. Both recompute a project's counts from its tasks rather than adding deltas: the
result does not depend on the order events are handled in, a redelivered event changes nothing,
and a rebuild racing the handlers cannot count a change twice. Recomputations of one project
take a transaction-level advisory lock, so two of them never interleave.

The stats read the projection once a rebuild has marked it built (``projection_state``); until
then they count from the tasks table. From then on their counts by status follow task writes
with the pipeline's delay (typically well under a second).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from redis.exceptions import RedisError
from sqlalchemy import Select, delete, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from backend.events.models import ProjectionState, ProjectTaskCount
from backend.projects.models import Project
from backend.tasks.models import Task
from tenancy import keys

log = logging.getLogger(__name__)
NAME = "project_task_counts"
_LOCK_SPACE = 0x7466_7063  # "tfpc": advisory lock keys of this projection


def _lock(session: Session, project_id: uuid.UUID) -> None:
    key = int.from_bytes(project_id.bytes[:4], "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(_LOCK_SPACE, key)))


def recompute(session: Session, project_id: uuid.UUID) -> None:
    """Replace the counts of ``project_id`` with what its tasks say now."""
    _lock(session, project_id)
    session.execute(delete(ProjectTaskCount).where(ProjectTaskCount.project_id == project_id))
    counted = (
        select(
            Task.project_id,
            Task.status_id,
            func.min(Task.status_category),
            func.count(),
        )
        .where(Task.project_id == project_id)
        .group_by(Task.project_id, Task.status_id)
    )
    session.execute(
        insert(ProjectTaskCount).from_select(
            ["project_id", "status_id", "category", "count"], counted
        )
    )


def rebuild(session: Session) -> int:
    """Recompute every project and mark the projection built; the number of projects."""
    projects = list(session.execute(select(Project.id)).scalars())
    for project_id in projects:
        recompute(session, project_id)
    session.execute(
        pg_insert(ProjectionState)
        .values(name=NAME, rebuilt_at=dt.datetime.now(dt.UTC))
        .on_conflict_do_update(index_elements=["name"], set_={"rebuilt_at": func.now()})
    )
    return len(projects)


def stats_changed(tenant_id: uuid.UUID) -> None:
    """Make the tenant's cached stats stale (after a recount committed). Best effort, like the
    API's own invalidation: the cache's TTL bounds what a failure leaves."""
    from backend.workers import resources

    try:
        resources.redis().incr(keys.stats_generation_key(tenant_id))
    except RedisError:
        log.warning("stats cache of tenant %s not invalidated after a recount", tenant_id)


def built_query() -> Select[tuple[bool]]:
    """Whether the projection has been built (for the stats' choice of source)."""
    return select(literal(True)).where(ProjectionState.name == NAME)
