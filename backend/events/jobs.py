"""The consumer side: handlers run exactly once per effect, whatever is delivered twice.

The relay sends ``events.handle_batch`` messages: up to ``event_batch_size`` events of one
tenant for one handler. The batch runs in one tenant transaction that records
``(event id, handler)`` in the tenant's inbox next to each event's effect: a redelivered
message (a worker killed before its ack, a relay that published twice) finds the entries and
changes nothing. If any event of the batch fails, the transaction is rolled back and each
event runs in a transaction of its own, so one bad event does not hold back the others; the
failing ones go on as single ``events.handle`` messages, retried with exponential backoff and
jitter, and after the last retry their event goes to the dead letters (shared schema), where
operators can inspect and replay it.
"""

from __future__ import annotations

import logging
import random
import traceback
import uuid
from typing import Any

from celery import Task
from celery.exceptions import Retry
from redis.exceptions import RedisError
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backend.config import get_settings
from backend.events import inflight, registry
from backend.events.models import DeadLetter, InboxEntry
from backend.events.outbox import EventContext, acting
from backend.workers import resources
from backend.workers.celery_app import celery_app
from tenancy.celery import TenantTask
from tenancy.context import require_tenant

log = logging.getLogger(__name__)
#: Failures of the infrastructure, not of a handler: the whole message is tried again later.
RECOVERABLE = (DBAPIError, RedisError, OSError)


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: exponential, capped, with "equal jitter"
    (half fixed, half random) so failed handlers of a burst do not retry in lockstep."""
    settings = get_settings()
    cap = min(settings.event_retry_max_seconds, settings.event_retry_base_seconds * 2**retries)
    return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 (spreading retries, not secrets)


def handle_once(envelope: dict[str, Any], handler: registry.Handler) -> bool:
    """Run ``handler`` on the event unless the inbox says it ran; whether it ran now."""
    with resources.tenant_job_session() as session, acting(_context(envelope)):
        if not _claim(session, envelope, handler):
            return False
        handler.run(session, envelope)
    return True


def dead_letter(
    envelope: dict[str, Any], handler: str, error: BaseException, attempts: int
) -> None:
    tenant = require_tenant()
    text = "".join(traceback.format_exception_only(type(error), error)).strip()[:4000]
    event_id = uuid.UUID(envelope["id"])
    # One transaction: the dead letter (shared schema) and the inbox entry that tells the
    # relay this handler is finished with the event (no redelivery of a dead letter).
    with resources.tenant_job_session() as session:
        session.add(
            DeadLetter(
                tenant_id=tenant.id,
                event_id=event_id,
                event_type=envelope["type"],
                handler=handler,
                envelope=envelope,
                error=text,
                attempts=attempts,
            )
        )
        session.execute(
            insert(InboxEntry)
            .values(event_id=event_id, handler=handler, outcome="dead-lettered")
            .on_conflict_do_nothing()
        )
    log.error(
        "event %s (%s) dead-lettered for handler %s after %d attempts: %s",
        envelope["id"],
        envelope["type"],
        handler,
        attempts,
        text,
    )


def _context(envelope: dict[str, Any]) -> EventContext:
    return EventContext(
        actor_type="system",
        request_id=f"event:{envelope['id']}",
        trace=dict(envelope.get("trace") or {}),
    )


def _claim(session: Session, envelope: dict[str, Any], handler: registry.Handler) -> bool:
    """Whether this delivery is the one to run (see :func:`_claim_all`)."""
    return bool(_claim_all(session, [envelope], handler))


def _claim_all(
    session: Session, envelopes: list[dict[str, Any]], handler: registry.Handler
) -> set[uuid.UUID]:
    """The events of these deliveries that are to run, in one statement: no inbox entry yet,
    or one that says the handler gave up (a replay, or a late copy of the message, tries
    again)."""
    ids = dict.fromkeys(uuid.UUID(e["id"]) for e in envelopes)  # one row per event
    claim = insert(InboxEntry).values([{"event_id": i, "handler": handler.name} for i in ids])
    claimed = session.execute(
        claim.on_conflict_do_update(
            index_elements=["event_id", "handler"],
            set_={"outcome": "handled", "processed_at": func.now()},
            where=InboxEntry.outcome == "dead-lettered",
        ).returning(InboxEntry.event_id)
    )
    return set(claimed.scalars())


def handle_all(envelopes: list[dict[str, Any]], handler: registry.Handler) -> int:
    """Run ``handler`` on every event the inbox does not know, in one transaction; how many
    ran. Raises when any of them fails (nothing is committed then)."""
    with resources.tenant_job_session() as session:
        claimed = _claim_all(session, envelopes, handler)
        for envelope in envelopes:
            if uuid.UUID(envelope["id"]) in claimed:
                with acting(_context(envelope)):
                    handler.run(session, envelope)
    return len(claimed)


@celery_app.task(name="events.handle_batch", base=TenantTask, bind=True, acks_late=True)
def handle_batch(
    self: Task, envelopes: list[dict[str, Any]], handler: str, message_id: str | None = None
) -> str:
    """Deliver a batch of one tenant's events to one handler (see the module docstring)."""
    tenant = require_tenant()
    failed: list[tuple[dict[str, Any], Exception]] = []
    try:
        found = registry.by_name(handler)
        if found is None:
            missing = LookupError(f"no handler named {handler!r} in this release")
            failed = [(e, missing) for e in envelopes]
        else:
            try:
                handle_all(envelopes, found)
                return "handled"
            except RECOVERABLE:
                raise
            except Exception:
                for envelope in envelopes:  # one by one, to find the ones that fail
                    try:
                        handle_once(envelope, found)
                    except RECOVERABLE:
                        raise
                    except Exception as error:
                        failed.append((envelope, error))
        for envelope, problem in failed:
            log.warning(
                "event %s failed in %s: %s; retrying alone", envelope["id"], handler, problem
            )
            handle.apply_async(args=[envelope, handler, 1], countdown=backoff(0), tenant=tenant)
        return f"{len(failed)} failed"
    except RECOVERABLE as exc:
        # PostgreSQL or Redis away: the whole batch again later (the inbox skips what ran).
        raise self.retry(
            exc=exc, countdown=backoff(self.request.retries), max_retries=None
        ) from exc
    finally:
        if message_id is not None:
            inflight.release(resources.redis(), tenant.id, message_id)
            inflight.signal(resources.engine(), tenant.schema_name)


@celery_app.task(name="events.handle", base=TenantTask, bind=True, acks_late=True)
def handle(self: Task, envelope: dict[str, Any], handler: str, prior_attempts: int = 0) -> str:
    """Deliver one event to one handler, with retries and then a dead letter.
    ``prior_attempts``: failed tries before this message (its batch's)."""
    found = registry.by_name(handler)
    settings = get_settings()
    try:
        if found is None:
            raise LookupError(f"no handler named {handler!r} in this release")
        return "handled" if handle_once(envelope, found) else "duplicate"
    except Exception as exc:
        if self.request.retries < settings.event_max_retries:
            raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
        try:
            dead_letter(envelope, handler, exc, prior_attempts + self.request.retries + 1)
        except Exception as lost:
            # Nowhere to put it yet (PostgreSQL away): keep retrying rather than drop it.
            raise self.retry(
                exc=lost, countdown=backoff(self.request.retries), max_retries=None
            ) from lost
        return "dead-lettered"


__all__ = ["Retry", "backoff", "handle", "handle_batch", "handle_once"]
