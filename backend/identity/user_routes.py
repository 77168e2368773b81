"""Users of the tenant: list, read, change role or active flag, deactivate."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from backend.identity import users
from backend.identity.models import User
from backend.identity.permissions import Principal, requires
from backend.identity.schemas import UserRead, UserUpdate
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    decode_keyset_cursor,
    encode_keyset_cursor,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"])
ERRORS = (400, 401, 403, 404, 422)


@router.get(
    "",
    response_model=Page[UserRead],
    responses=problem_responses(*ERRORS),
    summary="List the tenant's users (cursor paginated, oldest first)",
)
async def list_users(
    _caller: Annotated[Principal, requires("users:read")],
    db: TenantDB,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[UserRead]:
    after = decode_keyset_cursor(cursor) if cursor else None
    rows = await users.list_page(db, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_keyset_cursor(rows[-1].created_at, rows[-1].id)
    return Page[UserRead](items=[UserRead.model_validate(u) for u in rows], next_cursor=next_cursor)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    responses=problem_responses(*ERRORS),
    summary="Get a user",
)
async def get_user(
    user_id: uuid.UUID, _caller: Annotated[Principal, requires("users:read")], db: TenantDB
) -> User:
    return await users.get(db, user_id)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses=problem_responses(*ERRORS, 409),
    summary="Change a user's role or active flag (owners: owner-only; never the last owner)",
)
async def update_user(
    request: Request,
    user_id: uuid.UUID,
    change: UserUpdate,
    caller: Annotated[Principal, requires("users:manage")],
    db: TenantDB,
) -> User:
    return await users.update(db, user_id, change, caller=caller, request=request)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS, 409),
    summary="Deactivate a user (their sessions end at once; the row stays for the record)",
)
async def deactivate_user(
    request: Request,
    user_id: uuid.UUID,
    caller: Annotated[Principal, requires("users:manage")],
    db: TenantDB,
) -> Response:
    await users.update(db, user_id, UserUpdate(is_active=False), caller=caller, request=request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
