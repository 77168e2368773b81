"""Tenant-bound sessions: the placeholder schema mapped to the tenant's schema.

``schema_translate_map`` rewrites the placeholder at execution time, so compiled statements
stay cached across tenants and no ``search_path`` is ever left on a pooled connection. Without
a bound tenant these functions raise; a query that somehow skips them still hits the guard in
``backend.kit.db`` (the placeholder can never name a real schema).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenancy.context import require_tenant
from tenancy.naming import TENANT_PLACEHOLDER, validate_schema_name

if TYPE_CHECKING:
    from tenancy.registry import TenantRecord


def translate_map(schema_name: str) -> dict[str | None, str]:
    return {TENANT_PLACEHOLDER: validate_schema_name(schema_name)}


def bound_async_engine(engine: AsyncEngine, tenant: TenantRecord) -> AsyncEngine:
    return engine.execution_options(schema_translate_map=translate_map(tenant.schema_name))


def bound_engine(engine: Engine, tenant: TenantRecord) -> Engine:
    return engine.execution_options(schema_translate_map=translate_map(tenant.schema_name))


@asynccontextmanager
async def tenant_session(
    engine: AsyncEngine, tenant: TenantRecord | None = None
) -> AsyncIterator[AsyncSession]:
    """An AsyncSession bound to ``tenant`` (default: the context's tenant; raises if none).

    The caller owns the transaction: it commits or the session rolls back on close.
    """
    tenant = tenant or require_tenant()
    async with AsyncSession(bound_async_engine(engine, tenant), expire_on_commit=False) as session:
        yield session


@contextmanager
def sync_tenant_session(engine: Engine, tenant: TenantRecord | None = None) -> Iterator[Session]:
    """The synchronous twin of tenant_session, for workers and the CLI."""
    tenant = tenant or require_tenant()
    with Session(bound_engine(engine, tenant), expire_on_commit=False) as session:
        yield session
