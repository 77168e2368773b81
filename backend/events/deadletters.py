"""Operator use cases on dead letters (list, get, replay), shared by the platform API and the CLI.

A dead letter is one ``(event, handler)`` message that failed after its last retry
(backend/events/jobs.py). Replaying it sends the same message again to the tenant's queue. That
is safe to repeat: the handler's inbox entry is written with its effect, so an event a handler
has handled is skipped, never handled twice. ``replayed_at`` records that an operator sent it;
a replay that fails again ends as a new dead letter.

Callers own the transaction (a ``Session`` in ``session.begin()``): a replay sends the message
while holding the row's lock and commits ``replayed_at`` after, so two concurrent replays send
once; a commit lost after the send leaves ``replayed_at`` unset and a repeat is harmless.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.orm import Session

from backend.events.models import DeadLetter
from backend.events.repository import DeadLetterRepository
from backend.kit.errors import Problem
from backend.kit.pagination import decode_keyset_cursor, encode_keyset_cursor
from tenancy import registry


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetterView:
    """A dead letter with its tenant's slug: what the API and the CLI show."""

    id: uuid.UUID
    tenant: str
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    handler: str
    error: str
    attempts: int
    failed_at: dt.datetime
    replayed_at: dt.datetime | None
    envelope: dict[str, Any]

    @classmethod
    def of(cls, letter: DeadLetter, slug: str) -> DeadLetterView:
        return cls(
            id=letter.id,
            tenant=slug,
            tenant_id=letter.tenant_id,
            event_id=letter.event_id,
            event_type=letter.event_type,
            handler=letter.handler,
            error=letter.error,
            attempts=letter.attempts,
            failed_at=letter.failed_at,
            replayed_at=letter.replayed_at,
            envelope=letter.envelope,
        )


def _not_found(letter_id: uuid.UUID) -> Problem:
    return Problem(404, "dead-letter-not-found", f"No dead letter {letter_id}.")


def list_dead_letters(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    tenant: str | None = None,
    event_type: str | None = None,
) -> tuple[list[DeadLetterView], str | None]:
    """A page of dead letters, newest first; 404 tenant-not-found for an unknown slug."""
    before = decode_keyset_cursor(cursor) if cursor else None
    tenant_id = None
    if tenant is not None:
        record = registry.get_by_slug(session.connection(), tenant)
        if record is None:
            raise Problem(404, "tenant-not-found", f"No tenant '{tenant}'.")
        tenant_id = record.id
    rows = DeadLetterRepository(session).page(
        limit=limit + 1, before=before, tenant_id=tenant_id, event_type=event_type
    )
    views = [DeadLetterView.of(letter, slug) for letter, slug in rows]
    next_cursor = None
    if len(views) > limit:
        views = views[:limit]
        next_cursor = encode_keyset_cursor(views[-1].failed_at, views[-1].id)
    return views, next_cursor


def get_dead_letter(session: Session, letter_id: uuid.UUID) -> DeadLetterView:
    """One dead letter; 404 dead-letter-not-found."""
    found = DeadLetterRepository(session).get(letter_id)
    if found is None:
        raise _not_found(letter_id)
    return DeadLetterView.of(*found)


def replay_dead_letter(
    session: Session, letter_id: uuid.UUID, *, force: bool = False
) -> DeadLetterView:
    """Send the dead letter's message to its tenant's queue again and set ``replayed_at``.

    404 dead-letter-not-found; 409 already-replayed (unless ``force``); 409 tenant-not-active
    (a worker refuses tasks of suspended or deleting tenants); 503 when the broker is away.
    """
    from backend.events.jobs import handle

    found = DeadLetterRepository(session).get(letter_id, for_update=True)
    if found is None:
        raise _not_found(letter_id)
    letter, slug = found
    if letter.replayed_at is not None and not force:
        raise Problem(
            409,
            "already-replayed",
            f"Dead letter {letter_id} was replayed at {letter.replayed_at.isoformat()}; "
            "pass force=true to send it again (its handler's inbox skips a handled event).",
            replayed_at=letter.replayed_at.isoformat(),
        )
    record = registry.get_by_id(session.connection(), letter.tenant_id)
    if record is None or record.status != "active":
        status = record.status if record is not None else "gone"
        raise Problem(
            409,
            "tenant-not-active",
            f"Tenant '{slug}' is {status}: its workers refuse its messages. Resume it first.",
            tenant_status=status,
        )
    try:
        handle.apply_async(args=[letter.envelope, letter.handler], tenant=record)
    except KombuOperationalError as exc:
        raise Problem(
            503,
            "broker-unavailable",
            "The message broker is not answering; nothing was sent. Retry shortly.",
            headers={"Retry-After": "5"},
        ) from exc
    letter.replayed_at = dt.datetime.now(dt.UTC)
    session.flush()
    return DeadLetterView.of(letter, slug)
