"""Where flags are kept: the shared schema (tf_shared), the system of record.

``flags`` and ``flag_segments`` hold Unleash feature and segment JSON as operators sent it;
``flag_overrides`` the tenants' own on/off for flags an operator made tenant-overridable;
``flag_audit`` every change with who, when, before and after. ``flag_state`` is one row whose
``version`` every change increments in its transaction: it orders changes, and each process
knows from it whether its copy is current.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import SharedBase


class FlagRow(SharedBase):
    __tablename__ = "flags"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    tenant_overridable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_by: Mapped[str] = mapped_column(String(320))


class SegmentRow(SharedBase):
    __tablename__ = "flag_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_by: Mapped[str] = mapped_column(String(320))


class FlagOverride(SharedBase):
    __tablename__ = "flag_overrides"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tf_shared.tenants.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(
        ForeignKey("tf_shared.flags.name", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_by: Mapped[str] = mapped_column(String(320))


class FlagAudit(SharedBase):
    __tablename__ = "flag_audit"
    __table_args__ = (Index("ix_flag_audit_kind_name_id", "kind", "name", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    #: flag, segment or override.
    kind: Mapped[str] = mapped_column(String(20))
    #: The flag's name, or the segment's id as text.
    name: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column()
    #: create, update or delete.
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(320))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(BigInteger)


class FlagState(SharedBase):
    __tablename__ = "flag_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
