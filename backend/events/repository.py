"""All SQL of the event log (the tenant's outbox, read back)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events.models import OutboxEvent


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
