"""Dependencies shared by every domain, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.resources import Resources
from tenancy.db import tenant_session
from tenancy.registry import TenantRecord

# Trivial dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
# pool, a hop that costs more than the work (measured with bench.login).


async def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


async def get_tenant(request: Request) -> TenantRecord:
    """The tenant bound by the middleware (tenant routes only)."""
    return request.state.tenant  # type: ignore[no-any-return]


async def tenant_session_dep(request: Request) -> AsyncIterator[AsyncSession]:
    """The tenant's session for the whole request; closing it rolls back what was not committed."""
    resources: Resources = request.app.state.resources
    async with tenant_session(resources.engine, request.state.tenant) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(tenant_session_dep)]


async def unit_of_work(session: SessionDep) -> AsyncIterator[AsyncSession]:
    """Commits when the route returns without error (and before the response is sent)."""
    yield session
    await session.commit()


async def shared_session_dep(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the shared schema (tf_shared) only; closing it rolls back uncommitted work."""
    resources: Resources = request.app.state.resources
    async with AsyncSession(resources.engine, expire_on_commit=False) as session:
        yield session


async def shared_unit_of_work(
    session: Annotated[AsyncSession, Depends(shared_session_dep)],
) -> AsyncIterator[AsyncSession]:
    """Commits when the route returns without error (and before the response is sent)."""
    yield session
    await session.commit()


ResourcesDep = Annotated[Resources, Depends(get_resources)]
CurrentTenant = Annotated[TenantRecord, Depends(get_tenant)]
# scope="function": commit before the response is sent, so a client never gets a 201 for a
# row that a failed commit then lost.
TenantDB = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
SharedDB = Annotated[AsyncSession, Depends(shared_unit_of_work, scope="function")]
