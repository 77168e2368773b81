"""Sign-in, token refresh and logout (tenant users)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm

from backend.identity import audit, sessions
from backend.identity.manager import UserManagerDep
from backend.identity.models import User
from backend.identity.permissions import Principal, public, requires
from backend.identity.schemas import RefreshIn, TokenOut, UserRead
from backend.identity.service import normalize_email
from backend.identity.tokens import TokenService
from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.text import NO_NUL_PATTERN, NUL_MESSAGE
from backend.kit.throttle import Throttle, login_limits, too_many
from backend.kit.types import drop_null
from tenancy.keys import throttle_key

router = APIRouter(prefix="/api/v1", tags=["identity"])


class LoginForm(OAuth2PasswordRequestForm):
    """The OAuth2 password form with length limits (argon2 of a megabyte is a cheap DoS)."""

    def __init__(
        self,
        username: Annotated[str, Form(min_length=1, max_length=320, pattern=NO_NUL_PATTERN)],
        password: Annotated[str, Form(min_length=1, max_length=1024, pattern=NO_NUL_PATTERN)],
        grant_type: Annotated[
            str | None, Form(pattern="^password$", json_schema_extra=drop_null)
        ] = None,
        scope: Annotated[str, Form(max_length=1000)] = "",
    ) -> None:
        super().__init__(username=username, password=password, grant_type=grant_type, scope=scope)


def _ip(request: Request) -> str:
    return audit.client_ip(request) or "unknown"


def login_form(form: Annotated[LoginForm, Depends()]) -> LoginForm:
    """The OAuth2 password form, refusing NUL like every other free-text input (422)."""
    bad = [name for name in ("username", "password") if "\x00" in getattr(form, name)]
    if bad:
        raise RequestValidationError(
            [{"loc": ("body", name), "msg": NUL_MESSAGE, "type": "value_error"} for name in bad]
        )
    return form


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses=problem_responses(400, 401, 403, 404, 422, 429),
    summary="Exchange email and password for an access and a refresh token",
    dependencies=[public()],
)
async def login(
    request: Request,
    credentials: Annotated[LoginForm, Depends(login_form)],
    manager: UserManagerDep,
    tenant: CurrentTenant,
    resources: ResourcesDep,
    db: TenantDB,
) -> TokenOut:
    email = normalize_email(credentials.username)
    account_key = throttle_key(tenant.id, "login", "account", email)
    limits = login_limits(
        resources.settings, account_key, throttle_key(tenant.id, "login", "address", _ip(request))
    )
    # Redis errors propagate: no counting means no login (503), never an unthrottled one.
    throttle = Throttle(resources.redis)
    if (wait := await throttle.check(limits)) is not None:
        raise too_many(wait)
    user, verified = await manager.check_password(email, credentials.password)
    if user is None or not verified or not user.is_active:
        await throttle.fail(limits)
        await audit.record_detached(
            resources.engine,
            tenant,
            "login.failed",
            target_type="user" if user else None,
            target_id=user.id if user else None,
            request=request,
            details={"email": email[:320]},
        )
        raise Problem(
            401,
            "invalid-credentials",
            "Email or password is wrong.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    audit.record(
        db,
        "login.succeeded",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        request=request,
    )
    tokens: TokenService = request.app.state.tokens
    refresh = sessions.issue(
        db, user.id, lifetime=resources.settings.refresh_token_lifetime_seconds
    )
    return TokenOut(
        access_token=tokens.issue(user_id=user.id, role=user.role, tenant=tenant),
        refresh_token=refresh,
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
            audit.record(db, "refresh.reused", actor_type="anonymous", request=request)
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
