"""Invites: create (mailed), list, revoke, accept."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from backend.identity.audit import client_ip
from backend.identity.invites import Invites
from backend.identity.models import User
from backend.identity.onetime import OneTimeTokens
from backend.identity.permissions import Principal, public, requires
from backend.identity.reset_routes import token_limits
from backend.identity.schemas import InviteAccept, InviteCreate, InviteRead, UserRead
from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.pagination import Page
from backend.kit.throttle import Throttle, too_many

router = APIRouter(prefix="/api/v1/invites", tags=["invites"])
ERRORS = (400, 401, 403, 404, 422)
Manager = Annotated[Principal, requires("invites:manage")]


async def get_invites(resources: ResourcesDep) -> Invites:
    return Invites(OneTimeTokens(resources.redis, "invite"), resources.settings)


InvitesDep = Annotated[Invites, Depends(get_invites)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=InviteRead,
    responses=problem_responses(*ERRORS, 409),
    summary="Invite someone by email (the link works once, for 7 days by default)",
)
async def create_invite(
    request: Request,
    data: InviteCreate,
    caller: Manager,
    tenant: CurrentTenant,
    invites: InvitesDep,
    db: TenantDB,
    response: Response,
) -> InviteRead:
    invite = await invites.create(db, tenant, data, caller=caller, request=request)
    response.headers["Location"] = f"/api/v1/invites/{invite.id}"
    return invite


@router.get(
    "",
    response_model=Page[InviteRead],
    responses=problem_responses(*ERRORS),
    summary="Open invites, newest first",
)
async def list_invites(
    _caller: Manager, tenant: CurrentTenant, invites: InvitesDep
) -> Page[InviteRead]:
    return Page[InviteRead](items=await invites.list(tenant))


@router.get(
    "/{invite_id}",
    response_model=InviteRead,
    responses=problem_responses(*ERRORS),
    summary="An open invite",
)
async def get_invite(
    invite_id: uuid.UUID, _caller: Manager, tenant: CurrentTenant, invites: InvitesDep
) -> InviteRead:
    return await invites.get(tenant, invite_id)


@router.delete(
    "/{invite_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS),
    summary="Revoke an open invite",
)
async def revoke_invite(
    request: Request,
    invite_id: uuid.UUID,
    caller: Manager,
    tenant: CurrentTenant,
    invites: InvitesDep,
    db: TenantDB,
) -> Response:
    await invites.revoke(db, tenant, invite_id, caller=caller, request=request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/accept",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problem_responses(400, 404, 409, 422, 429),
    summary="Accept an invite: create the account with a password (the token is spent)",
    dependencies=[public()],
)
async def accept_invite(
    request: Request,
    data: InviteAccept,
    tenant: CurrentTenant,
    resources: ResourcesDep,
    invites: InvitesDep,
    db: TenantDB,
) -> User:
    limits = token_limits(
        resources.settings, tenant, "invite-accept", client_ip(request) or "unknown"
    )
    throttle = Throttle(resources.redis)
    if (wait := await throttle.check(limits)) is not None:
        raise too_many(wait, "bad invite tokens from this address")
    user = await invites.accept(db, tenant, data, request)
    if user is None:
        await throttle.fail(limits)
        raise Problem(
            400,
            "invalid-invite-token",
            "The invite is unknown, expired, revoked or already used; ask for a new one.",
        )
    return user
