"""API keys of the tenant: create (secret shown once), list, revoke."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response, status

from backend.events import outbox
from backend.events import types as events
from backend.identity import api_keys, audit
from backend.identity.models import ApiKey
from backend.identity.permissions import Principal, outranks, requires
from backend.identity.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from backend.kit.deps import CurrentTenant, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.pagination import Page

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
ERRORS = (400, 401, 403, 404, 422)
Manager = Annotated[Principal, requires("api_keys:manage")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(*ERRORS),
    summary="Create an API key; the secret is in this response only",
)
async def create_key(
    request: Request,
    data: ApiKeyCreate,
    caller: Manager,
    tenant: CurrentTenant,
    db: TenantDB,
    response: Response,
) -> ApiKeyCreated:
    if outranks(data.role, caller.role):
        raise Problem(403, "role-too-high", f"A '{caller.role}' cannot create a '{data.role}' key.")
    if data.expires_at is not None and data.expires_at <= dt.datetime.now(dt.UTC):
        raise Problem(422, "expires-in-past", "expires_at must be in the future.")
    key, secret = api_keys.create(
        db,
        tenant_id=tenant.id,
        name=data.name,
        role=data.role,
        expires_at=data.expires_at,
        created_by=caller.user_id,
    )
    audit.record(
        db,
        "api_key.created",
        actor_type=caller.kind,
        actor_id=caller.id,
        target_type="api_key",
        target_id=key.id,
        request=request,
        details={"name": data.name, "role": data.role},
    )
    outbox.record(db, events.ApiKeyCreated(api_key_id=key.id, role=data.role))
    await db.flush()
    response.headers["Location"] = f"/api/v1/api-keys/{key.id}"
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get(
    "",
    response_model=Page[ApiKeyRead],
    responses=problem_responses(*ERRORS),
    summary="List API keys, newest first (revoked ones included, marked)",
)
async def list_keys(_caller: Manager, db: TenantDB) -> Page[ApiKeyRead]:
    rows = await api_keys.list_keys(db)
    return Page[ApiKeyRead](items=[ApiKeyRead.model_validate(k) for k in rows])


@router.get(
    "/{key_id}",
    response_model=ApiKeyRead,
    responses=problem_responses(*ERRORS),
    summary="An API key (never its secret)",
)
async def get_key(key_id: uuid.UUID, _caller: Manager, db: TenantDB) -> ApiKey:
    key = await db.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:  # a revoked key is gone (DELETE)
        raise Problem(404, "api-key-not-found", f"No API key {key_id}.")
    return key


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS),
    summary="Revoke an API key (effective at once)",
)
async def revoke_key(
    request: Request, key_id: uuid.UUID, caller: Manager, db: TenantDB
) -> Response:
    before = await db.get(ApiKey, key_id)
    active = before is not None and before.revoked_at is None
    key: ApiKey | None = await api_keys.revoke(db, key_id)
    if key is None:
        raise Problem(404, "api-key-not-found", f"No API key {key_id}.")
    if active:  # revoking again changes nothing, and records nothing
        outbox.record(db, events.ApiKeyRevoked(api_key_id=key.id))
    audit.record(
        db,
        "api_key.revoked",
        actor_type=caller.kind,
        actor_id=caller.id,
        target_type="api_key",
        target_id=key.id,
        request=request,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
