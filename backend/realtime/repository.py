"""The outbox reads of the live feed: where a resuming client stopped, and what came after."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events.models import OutboxEvent

#: Clock difference tolerated between the API host that stamped an event's occurred_at and the
#: database that stamps published_at (only for an anchor that is not yet published).
CLOCK_SKEW = dt.timedelta(seconds=5)


async def event(session: AsyncSession, event_id: uuid.UUID) -> OutboxEvent | None:
    return (
        await session.execute(select(OutboxEvent).where(OutboxEvent.id == event_id))
    ).scalar_one_or_none()


async def after(session: AsyncSession, anchor: OutboxEvent, limit: int) -> list[OutboxEvent]:
    """Events after ``anchor`` in publication order (published_at, then seq), then the
    committed events the relay has not published yet, in seq order; at most ``limit``.

    Unpublished rows are included because the relay publishes to Redis before it commits
    published_at: an event published just before the client subscribed is not yet marked
    published when the replay reads. The live feed drops the copy of such an event that the
    relay's later commit (or a retry) publishes again.
    """
    if anchor.published_at is not None:
        later = tuple_(OutboxEvent.published_at, OutboxEvent.seq) > tuple_(
            literal(anchor.published_at, OutboxEvent.published_at.type),
            literal(anchor.seq, OutboxEvent.seq.type),
        )
    else:
        # The client got the anchor in a replay, unpublished: with every event published by
        # then. Events published since are later than the anchor's commit, so later than its
        # occurred_at (which may repeat a few events; never skip one).
        later = OutboxEvent.published_at > anchor.occurred_at - CLOCK_SKEW
    # Two reads, each along an index of tenant migration 0007: (published_at, seq), and the partial
    # index of unpublished rows (an OR of both would read the whole outbox).
    published = list(
        (
            await session.execute(
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_not(None), later, OutboxEvent.id != anchor.id)
                .order_by(OutboxEvent.published_at, OutboxEvent.seq)
                .limit(limit)
            )
        ).scalars()
    )
    if len(published) == limit:
        return published
    unpublished = (
        await session.execute(
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None), OutboxEvent.id != anchor.id)
            .order_by(OutboxEvent.seq)
            .limit(limit - len(published))
        )
    ).scalars()
    return published + list(unpublished)
