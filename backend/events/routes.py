"""The tenant's event log and a task's activity (read from the outbox, newest first).

Events stay readable for ``event_retention_days`` (the relay prunes published rows past it).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.events.outbox import envelope
from backend.events.repository import EventFilters, EventRepository
from backend.events.schemas import EventRead
from backend.events.types import TYPES
from backend.identity.permissions import Principal, requires
from backend.kit.deps import CurrentTenant, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.kit.types import QueryDateTime
from backend.tasks.repository import TaskRepository

router = APIRouter(prefix="/api/v1", tags=["events"])
AUTH_ERRORS = (400, 401, 403, 404)
AGGREGATE_TYPES = ("project", "task", "label", "invite", "user", "api_key")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
EventType = Annotated[
    str | None, Query(max_length=64, description="An event type, e.g. TaskCreated")
]
When = Annotated[QueryDateTime | None, Query(description="ISO 8601 with a time zone")]


def _filters(**values: Any) -> EventFilters:
    event_type = values.get("type")
    if event_type is not None and event_type not in TYPES:
        raise Problem(
            422,
            "invalid-parameter",
            f"Unknown event type {event_type!r}.",
            allowed=sorted(TYPES),
        )
    for name in ("after", "before"):
        moment = values.get(name)
        if moment is not None and moment.tzinfo is None:
            raise Problem(422, "invalid-parameter", f"{name} needs a time zone (e.g. Z).")
    return EventFilters(**values)


async def _page(
    db: TenantDB, tenant_id: uuid.UUID, filters: EventFilters, limit: int, cursor: str | None
) -> Page[EventRead]:
    below = None
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise Problem(422, "invalid-cursor", "cursor is not one this API returned")
        below = raw
    rows = await EventRepository(db).page(filters, below_seq=below, limit=limit + 1)
    next_cursor = encode_cursor([rows[limit - 1].seq]) if len(rows) > limit else None
    items = [EventRead.model_validate(envelope(r, tenant_id)) for r in rows[:limit]]
    return Page[EventRead](items=items, next_cursor=next_cursor)


@router.get(
    "/events",
    response_model=Page[EventRead],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="The tenant's event log, newest first (filter by type, aggregate, time)",
)
async def list_events(
    _caller: Annotated[Principal, requires("events:read")],
    tenant: CurrentTenant,
    db: TenantDB,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    type: EventType = None,
    aggregate_type: Annotated[str | None, Query(pattern=f"^({'|'.join(AGGREGATE_TYPES)})$")] = None,
    aggregate_id: uuid.UUID | None = None,
    after: When = None,
    before: When = None,
) -> Page[EventRead]:
    filters = _filters(
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        after=after,
        before=before,
    )
    return await _page(db, tenant.id, filters, limit, cursor)


@router.get(
    "/tasks/{task_id}/activity",
    response_model=Page[EventRead],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="What happened to a task (its events, comments and watchers included), newest first",
)
async def task_activity(
    task_id: uuid.UUID,
    _caller: Annotated[Principal, requires("events:read")],
    tenant: CurrentTenant,
    db: TenantDB,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    type: EventType = None,
    after: When = None,
    before: When = None,
) -> Page[EventRead]:
    if await TaskRepository(db).get(task_id) is None:
        raise Problem(404, "task-not-found", f"No task {task_id}.")
    filters = _filters(
        type=type, aggregate_type="task", aggregate_id=task_id, after=after, before=before
    )
    return await _page(db, tenant.id, filters, limit, cursor)
