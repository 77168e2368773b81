"""All SQL of the event pipeline's readers: the event log (the tenant's outbox, read back) and
the dead letters (shared schema, joined to the registry for the tenant's slug)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.events.models import DeadLetter, OutboxEvent
from tenancy.registry import Tenant


@dataclass(frozen=True, slots=True)
class EventFilters:
    type: str | None = None
    aggregate_type: str | None = None
    aggregate_id: uuid.UUID | None = None
    after: dt.datetime | None = None
    before: dt.datetime | None = None


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, filters: EventFilters, *, below_seq: int | None, limit: int
    ) -> Sequence[OutboxEvent]:
        """Newest first (by commit sequence), ``limit`` rows below ``below_seq``."""
        clauses: list[ColumnElement[bool]] = []
        if filters.type is not None:
            clauses.append(OutboxEvent.type == filters.type)
        if filters.aggregate_type is not None:
            clauses.append(OutboxEvent.aggregate_type == filters.aggregate_type)
        if filters.aggregate_id is not None:
            clauses.append(OutboxEvent.aggregate_id == filters.aggregate_id)
        if filters.after is not None:
            clauses.append(OutboxEvent.occurred_at > filters.after)
        if filters.before is not None:
            clauses.append(OutboxEvent.occurred_at < filters.before)
        if below_seq is not None:
            clauses.append(OutboxEvent.seq < below_seq)
        query = select(OutboxEvent).where(*clauses).order_by(OutboxEvent.seq.desc()).limit(limit)
        return (await self.session.scalars(query)).all()


_COLUMNS = (DeadLetter, Tenant.slug)


class DeadLetterRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def page(
        self,
        *,
        limit: int,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
        tenant_id: uuid.UUID | None = None,
        event_type: str | None = None,
    ) -> Sequence[Row[tuple[DeadLetter, str]]]:
        """Newest first, by ``(failed_at, id)``; only rows older than ``before`` when given."""
        query: Any = (
            select(*_COLUMNS)
            .join(Tenant, Tenant.id == DeadLetter.tenant_id)
            .order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(
                tuple_(DeadLetter.failed_at, DeadLetter.id)
                < tuple_(literal(before[0]), literal(before[1]))
            )
        if tenant_id is not None:
            query = query.where(DeadLetter.tenant_id == tenant_id)
        if event_type is not None:
            query = query.where(DeadLetter.event_type == event_type)
        return self.session.execute(query).all()

    def get(
        self, letter_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[DeadLetter, str] | None:
        query = (
            select(*_COLUMNS)
            .join(Tenant, Tenant.id == DeadLetter.tenant_id)
            .where(DeadLetter.id == letter_id)
        )
        if for_update:
            # Only the dead letter's row: two replays of it wait for each other.
            query = query.with_for_update(of=DeadLetter)
        row = self.session.execute(query).first()
        return (row[0], row[1]) if row is not None else None
