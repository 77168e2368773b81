"""Who may do what: one table (action -> roles) and one dependency that enforces it.

Every tenant route declares its action with ``requires(action)`` or says it is ``public()``;
tests/test_permissions.py walks every route and role and compares the answers with this table.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.identity import api_keys
from backend.identity.models import ROLES, User
from backend.identity.tokens import TokenService
from backend.kit.deps import SessionDep
from backend.kit.errors import Problem
from tenancy.context import require_tenant
from tenancy.resolver import bearer_token

F = TypeVar("F", bound=Callable[..., Any])

ALL = frozenset(ROLES)
WRITERS = frozenset({"owner", "admin", "member"})
ADMINS = frozenset({"owner", "admin"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "users:me": ALL,
    "users:read": ALL,
    "users:manage": ADMINS,
    "projects:read": ALL,
    "projects:create": WRITERS,
    "projects:update": WRITERS,
    "projects:delete": ADMINS,
    "tasks:read": ALL,
    "tasks:create": WRITERS,
    "tasks:update": WRITERS,
    # Writers may reach the route; the service lets admins delete any task, others their own.
    "tasks:delete": WRITERS,
    "invites:manage": ADMINS,
    "api_keys:manage": ADMINS,
    "audit:read": ADMINS,
    # The event log, a task's activity and the live feed (WebSocket /api/v1/stream).
    "events:read": ALL,
    # Comments: editing is the author's only and deleting the author's or an admin's; the
    # per-comment rule is checked in backend.tasks.comments on top of these roles.
    "comments:read": ALL,
    "comments:create": WRITERS,
    "comments:update": WRITERS,
    "comments:delete": WRITERS,
    "labels:read": ALL,
    "labels:create": WRITERS,
    "labels:manage": ADMINS,
    # Watching: a member adds or removes themself, an admin anyone (backend.tasks.watchers).
    "watchers:read": ALL,
    "watchers:update": WRITERS,
    "analytics:read": ALL,
    # Feature flags evaluated for the caller; turning an overridable flag on or off for the
    # whole tenant.
    "flags:read": ALL,
    "flags:override": ADMINS,
}

#: Actions only a person may take: an API key can never manage users, invites or keys (a key
#: minting keys, or re-activating its creator, would outlive every revocation).
HUMAN_ONLY = frozenset({"users:manage", "invites:manage", "api_keys:manage"})

#: Lower is stronger.
RANK = {role: i for i, role in enumerate(ROLES)}


def outranks(role: str, other: str) -> bool:
    return RANK[role] < RANK[other]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (access token) or a machine client (API key)."""

    kind: Literal["user", "api_key"]
    id: uuid.UUID
    role: str
    user: User | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.user.id if self.user is not None else None


def _unauthorized(code: str, detail: str) -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": "Bearer"})


async def _authenticate(request: Request, session: AsyncSession) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    return await principal_of(token, session, request.app.state.tokens)


async def principal_of(token: str | None, session: AsyncSession, tokens: TokenService) -> Principal:
    """Who ``token`` (access token or API key) is in the bound tenant; a 401 problem if nobody."""
    if token is None:
        raise _unauthorized("not-authenticated", "A bearer token or API key is required.")
    if api_keys.is_api_key(token):
        found = await api_keys.find_usable(session, token)
        if found is None:
            raise _unauthorized(
                "invalid-api-key",
                "The API key is unknown, revoked or expired, or its creator is deactivated.",
            )
        key, creator_role = found
        # A key never acts above its creator's current role: a demotion applies to it too.
        role = key.role if not outranks(key.role, creator_role) else creator_role
        return Principal("api_key", key.id, role)
    claims = tokens.decode(token)
    if claims is None:
        raise _unauthorized("invalid-token", "The access token is invalid or expired.")
    if claims["tid"] != str(require_tenant().id):
        raise _unauthorized("wrong-tenant", "The token was issued for another tenant.")
    try:
        user = await session.get(User, uuid.UUID(claims["sub"]))
    except ValueError:
        user = None
    if user is None or not user.is_active:
        raise _unauthorized("invalid-token", "The token's user is unknown or deactivated.")
    # The role comes from the row, not the token: a demotion takes effect at once.
    return Principal("user", user.id, user.role, user)


def idempotency_caller(scope: Any, credential: str) -> str | None:
    """The caller an Idempotency-Key is kept for (backend/kit/idempotency.py): the user of a
    verified access token of the request's tenant, or the API key (by its hash; whether it is
    still usable is the route's check). None for anything else: the route answers 401."""
    token = bearer_token(credential)
    if token is None:
        return None
    if api_keys.is_api_key(token):
        return "key:" + hashlib.sha256(token.encode()).hexdigest()
    tenant = scope.get("state", {}).get("tenant")
    claims = scope["app"].state.tokens.decode(token)
    if tenant is None or claims is None or claims.get("tid") != str(tenant.id):
        return None
    return f"user:{claims['sub']}"


async def authenticate(request: Request, session: SessionDep) -> Principal:
    """The caller of this request (computed once per request)."""
    cached = getattr(request.state, "principal", None)
    if cached is None:
        cached = await _authenticate(request, session)
        request.state.principal = cached
        # Events this request records name the caller as their actor.
        outbox.set_context(
            outbox.EventContext(
                actor_type=cached.kind,
                actor_id=cached.id,
                request_id=getattr(request.state, "request_id", None),
                trace=outbox.trace_context(request.headers),
            )
        )
    return cached  # type: ignore[no-any-return]


def requires(action: str) -> Any:
    """``Annotated[Principal, requires("projects:create")]``: 401 without a caller, 403 (problem)
    when the caller's role may not do ``action``."""
    PERMISSIONS[action]  # an unknown action fails at import, not at the first request

    async def check(principal: Principal = Depends(authenticate)) -> Principal:
        return allow(principal, action)

    check.permission = action  # type: ignore[attr-defined]
    return Depends(check)


def allow(principal: Principal, action: str) -> Principal:
    """``principal`` if it may do ``action``, else a 403 problem."""
    if principal.kind == "api_key" and action in HUMAN_ONLY:
        raise Problem(
            403,
            "forbidden",
            f"API keys may not do '{action}'; sign in as a user.",
            action=action,
        )
    if principal.role not in PERMISSIONS[action]:
        raise Problem(
            403, "forbidden", f"Role '{principal.role}' may not do '{action}'.", action=action
        )
    return principal


def declares(action: str) -> Callable[[F], F]:
    """Marks a WebSocket endpoint that checks ``action`` itself (with ``allow``), for the route
    walker: a socket authenticates after the handshake, so no dependency can declare it."""
    PERMISSIONS[action]

    def mark(endpoint: F) -> F:
        endpoint.permission = action  # type: ignore[attr-defined]
        return endpoint

    return mark


def public() -> Any:
    """Marks a tenant route that needs no caller (login, refresh, invite accept, ...)."""

    async def open_route() -> None:  # async: a plain def would cost a thread-pool hop
        return None

    open_route.permission = None  # type: ignore[attr-defined]
    return Depends(open_route)


def declared_permission(call: Callable[..., Any]) -> tuple[bool, str | None]:
    """(declared?, action) of a dependency callable, for the route walker."""
    if hasattr(call, "permission"):
        return True, call.permission
    return False, None
