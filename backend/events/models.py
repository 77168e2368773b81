"""The tables of the event pipeline.

Per tenant: ``outbox`` (every event, written in the transaction of its change; it is also the
tenant's event log until pruned), ``inbox`` (which handler has handled which event) and the
``project_task_counts`` read projection. Shared: ``dead_letters`` (events a handler gave up on,
for operators).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import SharedBase, TenantBase


class OutboxEvent(TenantBase):
    """One domain event of the tenant, as its envelope's columns."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("uq_outbox_id", "id", unique=True),
        # What the relay claims: rows not yet published, or published but not yet handed to
        # their handlers, in commit order.
        Index("ix_outbox_undispatched_seq", "seq", postgresql_where=text("dispatched_at IS NULL")),
        # What the relay checks for delivery: dispatched, not yet settled by every handler.
        Index(
            "ix_outbox_unsettled_published_at",
            "dispatched_at",
            postgresql_where=text("dispatched_at IS NOT NULL AND settled_at IS NULL"),
        ),
        Index("ix_outbox_aggregate_seq", "aggregate_type", "aggregate_id", "seq"),
        Index("ix_outbox_type_seq", "type", "seq"),
        Index("ix_outbox_occurred_at", "occurred_at"),
        # The live feed's resume (publication order) and rows not yet published (0007).
        Index("ix_outbox_published_at_seq", "published_at", "seq"),
        Index("ix_outbox_unpublished_seq", "seq", postgresql_where=text("published_at IS NULL")),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    aggregate_type: Mapped[str] = mapped_column(String(32), nullable=False)
    aggregate_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    trace: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))
    #: On the live feed and in the event log's "published" order.
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Handed to its handlers' queues (held back while the tenant is at its in-flight cap).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Every handler of the event has finished with it (handled or dead-lettered).
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class InboxEntry(TenantBase):
    """A handler has finished with an event: ``handled`` (written in the transaction of its
    effect) or ``dead-lettered`` (it gave up; a replay removes the entry first)."""

    __tablename__ = "inbox"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    handler: Mapped[str] = mapped_column(String(100), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, server_default="handled")
    processed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )


class ProjectTaskCount(TenantBase):
    """Read projection: how many tasks a project has in each status (kept by handlers)."""

    __tablename__ = "project_task_counts"

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    status_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    category: Mapped[str] = mapped_column(String(12), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ProjectionState(TenantBase):
    """A projection built by ``tenantflow projections rebuild``: readers use it from then on."""

    __tablename__ = "projection_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    rebuilt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DeadLetter(SharedBase):
    """An event a handler failed on after its last retry."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_failed_at", "failed_at"),
        Index("ix_dead_letters_tenant_id_failed_at", "tenant_id", "failed_at"),
        Index("ix_dead_letters_event_type", "event_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    handler: Mapped[str] = mapped_column(String(100), nullable=False)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    failed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    replayed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
