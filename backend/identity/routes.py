"""Sign-in, token refresh and logout (tenant users)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm

from backend.identity import audit, sessions
from backend.identity.manager import user_manager
from backend.identity.models import User
from backend.identity.permissions import Principal, public, requires
from backend.identity.schemas import RefreshIn, TokenOut, UserRead
from backend.identity.service import normalize_email
from backend.identity.signin import SignIn, sign_in
from backend.identity.tokens import TokenService
from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.text import NO_NUL_PATTERN, NUL_MESSAGE
from backend.kit.throttle import LoginGuard
from backend.kit.types import drop_null
from tenancy.db import tenant_session

router = APIRouter(prefix="/api/v1", tags=["identity"])


def _ip(request: Request) -> str:
    return audit.client_ip(request) or "unknown"


async def login_form(
    username: Annotated[str, Form(min_length=1, max_length=320, pattern=NO_NUL_PATTERN)],
    password: Annotated[str, Form(min_length=1, max_length=1024, pattern=NO_NUL_PATTERN)],
    grant_type: Annotated[
        str | None, Form(pattern="^password$", json_schema_extra=drop_null)
    ] = None,
    scope: Annotated[str, Form(max_length=1000)] = "",
) -> OAuth2PasswordRequestForm:
    """The OAuth2 password form with length limits (argon2 of a megabyte is a cheap DoS),
    refusing NUL like every other free-text input (422).

    One ``async def`` rather than a form class: FastAPI would build the class in the thread pool.
    """
    bad = [
        name for name, value in (("username", username), ("password", password)) if "\x00" in value
    ]
    if bad:
        raise RequestValidationError(
            [{"loc": ("body", name), "msg": NUL_MESSAGE, "type": "value_error"} for name in bad]
        )
    return OAuth2PasswordRequestForm(
        username=username, password=password, grant_type=grant_type, scope=scope
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses=problem_responses(400, 401, 403, 404, 422, 429),
    summary="Exchange email and password for an access and a refresh token",
    dependencies=[public()],
)
async def login(
    request: Request,
    credentials: Annotated[OAuth2PasswordRequestForm, Depends(login_form)],
    tenant: CurrentTenant,
    resources: ResourcesDep,
) -> TokenOut:
    # The session is opened here, not by generator dependencies (TenantDB and a user-manager
    # dependency): solving them and unwinding their exit stacks was ~1 ms of a login's path
    # (bench/login: the 422 path fell from 2.4 to 1.4 ms p50 without them). Same unit of work:
    # committed before the response is sent; an error rolls it back.
    settings = resources.settings
    email = normalize_email(credentials.username)
    guard = LoginGuard(
        resources.redis,
        settings,
        tenant_id=tenant.id,
        action="login",
        account=email,
        address=_ip(request),
    )
    tokens: TokenService = request.app.state.tokens
    async with tenant_session(resources.engine, tenant) as db:
        context = SignIn(
            db=db,
            manager=user_manager(db, settings),
            guard=guard,
            tokens=tokens,
            tenant=tenant,
            request=request,
            refresh_lifetime=settings.refresh_token_lifetime_seconds,
        )
        signed_in = await sign_in(context, email, credentials.password)
        await db.commit()
    return TokenOut(
        access_token=signed_in.access_token,
        refresh_token=signed_in.refresh_token,
        expires_in=tokens.lifetime,
    )


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Exchange a refresh token for new tokens (the old refresh token is spent)",
    dependencies=[public()],
)
async def refresh(
    request: Request, body: RefreshIn, tenant: CurrentTenant, resources: ResourcesDep, db: TenantDB
) -> TokenOut:
    rotation = await sessions.rotate(
        db, body.refresh_token, lifetime=resources.settings.refresh_token_lifetime_seconds
    )
    if not rotation.ok:
        if rotation.reused:
            audit.record(
                db,
                "refresh.reused",
                actor_type="anonymous",
                target_type="user",
                target_id=rotation.user_id,
                request=request,
                details={"family_id": str(rotation.family_id)},
            )
        # The family revocation must stick although the request is refused.
        await db.commit()
        raise Problem(
            401,
            "invalid-refresh-token",
            "The refresh token is unknown, expired, revoked or already used; log in again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert rotation.user is not None and rotation.token is not None
    tokens: TokenService = request.app.state.tokens
    return TokenOut(
        access_token=tokens.issue(user_id=rotation.user.id, role=rotation.user.role, tenant=tenant),
        refresh_token=rotation.token,
        expires_in=tokens.lifetime,
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 422),
    summary="End a session: revoke the refresh token's whole family",
    dependencies=[public()],
)
async def logout(request: Request, body: RefreshIn, db: TenantDB) -> Response:
    user_id = await sessions.logout(db, body.refresh_token)
    if user_id is not None:
        audit.record(
            db, "logout", actor_id=user_id, target_type="user", target_id=user_id, request=request
        )
    # 204 for unknown tokens too: logging out twice is not an error.
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/users/me",
    response_model=UserRead,
    responses=problem_responses(400, 401, 403, 404),
    summary="The signed-in user",
)
async def me(caller: Annotated[Principal, requires("users:me")]) -> User:
    if caller.user is None:
        raise Problem(404, "not-a-user", "This API key belongs to no user.")
    return caller.user
