"""Declarative bases, the naming convention and engine factories.

Shared tables live in ``tf_shared``; tenant tables are declared in a placeholder schema that a
tenant-bound session maps to the tenant's schema (see tenancy.db). Every engine made here has
the tenant guard installed, so a query that reaches PostgreSQL with the placeholder still in it
raises instead of running.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, func
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenancy.context import TenantNotBound
from tenancy.naming import SHARED_SCHEMA, TENANT_PLACEHOLDER

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_PLACEHOLDER_REF = TENANT_PLACEHOLDER + "."


class SharedBase(DeclarativeBase):
    """Tables of the platform (shared) schema."""

    metadata = MetaData(schema=SHARED_SCHEMA, naming_convention=NAMING_CONVENTION)


class TenantBase(DeclarativeBase):
    """Tables that exist once per tenant schema."""

    metadata = MetaData(schema=TENANT_PLACEHOLDER, naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def _refuse_unbound(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if _PLACEHOLDER_REF in statement:
        raise TenantNotBound(
            "query on tenant tables without a bound tenant (use tenancy.db.tenant_session)"
        )


def install_tenant_guard(engine: Engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _refuse_unbound):
        event.listen(engine, "before_cursor_execute", _refuse_unbound)


# Bound parameters (emails, password hashes, token digests) never reach error messages and
# logs: SQLAlchemy leaves them out of the exceptions it raises.
def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    install_tenant_guard(engine)
    return engine


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(url, pool_pre_ping=True, **kwargs)
    install_tenant_guard(engine.sync_engine)
    return engine
