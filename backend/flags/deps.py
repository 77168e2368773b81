"""Flags in request code: the caller's evaluation context, and route gates.

from backend.flags import deps as flags

@router.get("/beta", dependencies=[flags.require("beta-reports")])   # 404 while off
async def beta(...): ...

async def route(new_ui: Annotated[bool, flags.enabled("new-ui")]): ...   # branch on it
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from backend.flags.context import Context
from backend.flags.engine import Variant
from backend.flags.store import FlagStore
from backend.identity.permissions import Principal, authenticate
from backend.kit.errors import Problem

APP_NAME = "tenantflow-api"


def store_of(request: Request) -> FlagStore:
    return request.app.state.resources.flags  # type: ignore[no-any-return]


def context_of(request: Request, principal: Principal | None) -> Context:
    """Who is asking: the user (or API key), their session header, address, tenant, plan."""
    tenant = request.state.tenant
    client = request.client
    return Context(
        user_id=str(principal.id) if principal is not None else None,
        session_id=request.headers.get("x-session-id"),
        remote_address=client.host if client else None,
        environment=request.app.state.resources.settings.env,
        app_name=APP_NAME,
        tenant_id=str(tenant.id),
        plan=tenant.plan,
    )


def enabled(name: str) -> Any:
    """``Annotated[bool, flags.enabled("name")]``: the flag for the caller."""

    async def check(request: Request, principal: Principal = Depends(authenticate)) -> bool:
        return store_of(request).is_enabled(name, context_of(request, principal))

    return Depends(check)


def require(name: str) -> Any:
    """Route dependency: 404 while the flag is off for the caller (the route does not exist
    for them)."""

    async def gate(request: Request, principal: Principal = Depends(authenticate)) -> None:
        if not store_of(request).is_enabled(name, context_of(request, principal)):
            raise Problem(404, "not-found", "Not Found")

    return Depends(gate)


class Flags:
    """The flags of one request's caller."""

    __slots__ = ("_context", "_store")

    def __init__(self, store: FlagStore, context: Context) -> None:
        self._store = store
        self._context = context

    def enabled(self, name: str) -> bool:
        return self._store.is_enabled(name, self._context)

    def variant(self, name: str) -> Variant:
        return self._store.variant(name, self._context)


async def flags_for(request: Request, principal: Principal = Depends(authenticate)) -> Flags:
    return Flags(store_of(request), context_of(request, principal))


FlagsDep = Annotated[Flags, Depends(flags_for)]
