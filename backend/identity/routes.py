from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm

from backend.identity.manager import CurrentUser, UserManagerDep
from backend.identity.models import User
from backend.identity.schemas import TokenOut, UserRead
from backend.identity.tokens import TokenService
from backend.kit.deps import CurrentTenant, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.text import NUL_MESSAGE

router = APIRouter(prefix="/api/v1", tags=["identity"])


def login_form(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> OAuth2PasswordRequestForm:
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
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Exchange email and password for an access token",
)
async def login(
    request: Request,
    credentials: Annotated[OAuth2PasswordRequestForm, Depends(login_form)],
    manager: UserManagerDep,
    tenant: CurrentTenant,
    _uow: TenantDB,
) -> TokenOut:
    credentials.username = credentials.username.strip().lower()
    user = await manager.authenticate(credentials)
    if user is None or not user.is_active:
        raise Problem(
            401,
            "invalid-credentials",
            "Email or password is wrong.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens: TokenService = request.app.state.tokens
    token = tokens.issue(user_id=user.id, role=user.role, tenant=tenant)
    return TokenOut(access_token=token, expires_in=tokens.lifetime)


@router.get(
    "/users/me",
    response_model=UserRead,
    responses=problem_responses(400, 401, 403, 404),
    summary="The signed-in user",
)
async def me(user: CurrentUser) -> User:
    return user
