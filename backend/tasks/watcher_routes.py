"""Watchers of a task: list, add and remove."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from backend.identity.permissions import Principal, requires
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.etag import if_match_of
from backend.kit.pagination import MAX_LIMIT, Page
from backend.tasks import watchers

router = APIRouter(prefix="/api/v1/tasks/{task_id}/watchers", tags=["watchers"])
ERRORS = (400, 401, 403, 404, 422)


@router.get(
    "",
    response_model=Page[uuid.UUID],
    responses=problem_responses(*ERRORS),
    summary="The user ids watching a task (in id order; cursor paginated)",
)
async def list_watchers(
    task_id: uuid.UUID,
    _caller: Annotated[Principal, requires("watchers:read")],
    db: TenantDB,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[uuid.UUID]:
    ids, next_cursor = await watchers.list_page(db, task_id, limit=limit, cursor=cursor)
    return Page[uuid.UUID](items=ids, next_cursor=next_cursor)


@router.put(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS),
    summary="Watch a task (yourself; owners and admins: anyone active; idempotent)",
)
async def add_watcher(
    task_id: uuid.UUID,
    user_id: uuid.UUID,
    caller: Annotated[Principal, requires("watchers:update")],
    db: TenantDB,
) -> Response:
    await watchers.add(db, task_id, user_id, caller=caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS, 412),
    summary="Stop watching a task (yourself; owners and admins: anyone; idempotent)",
    description="With `If-Match`, the task's ETag: 412 when the task changed since it was read "
    "(adding or removing a watcher changes the task's ETag).",
)
async def remove_watcher(
    request: Request,
    task_id: uuid.UUID,
    user_id: uuid.UUID,
    caller: Annotated[Principal, requires("watchers:update")],
    db: TenantDB,
) -> Response:
    await watchers.remove(db, task_id, user_id, caller=caller, if_match=if_match_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
