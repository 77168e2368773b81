"""Plans and per-tenant limit overrides, in the shared schema (tf_shared).

A plan row holds the limits of every tenant on that plan; a ``tenant_limits`` row overrides
some of them for one tenant (a NULL column keeps the plan's value). Limits count requests per
minute; ``concurrent_requests`` NULL means no concurrency limit. ``shadow`` lists the policies
that only count and log would-be refusals; ``fail_closed`` the policies that refuse (503)
while Redis is unavailable, the others admitting requests then. ``limit_audit`` records every
change of either, with who, when, before and after.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import SharedBase


class Plan(SharedBase):
    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    user_requests_per_minute: Mapped[int] = mapped_column(Integer)
    write_requests_per_minute: Mapped[int] = mapped_column(Integer)
    auth_requests_per_minute: Mapped[int] = mapped_column(Integer)
    concurrent_requests: Mapped[int | None] = mapped_column(Integer)
    shadow: Mapped[list[str]] = mapped_column(
        ARRAY(String(20)), server_default=text("'{}'::varchar[]")
    )
    fail_closed: Mapped[list[str]] = mapped_column(
        ARRAY(String(20)), server_default=text("'{}'::varchar[]")
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TenantLimits(SharedBase):
    __tablename__ = "tenant_limits"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tf_shared.tenants.id", ondelete="CASCADE"), primary_key=True
    )
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    user_requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    write_requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    auth_requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    concurrent_requests: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LimitAudit(SharedBase):
    __tablename__ = "limit_audit"
    __table_args__ = (Index("ix_limit_audit_kind_name_id", "kind", "name", text("id DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    #: plan or tenant.
    kind: Mapped[str] = mapped_column(String(20))
    #: The plan's name, or the tenant's slug at the time of the change.
    name: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(320))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: The plan's stored limits, or the tenant's override row; null when there was none.
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
