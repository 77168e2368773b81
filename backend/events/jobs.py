"""The consumer side: one Celery message per (event, handler), run exactly once per effect.

``events.handle`` runs the handler in a tenant transaction that first records
``(event id, handler)`` in the tenant's inbox: a redelivered message (a worker killed before
its ack, a relay that published twice) finds the entry and changes nothing. A failing handler
is retried with exponential backoff and full jitter; after the last retry its event goes to
the dead letters (shared schema), where operators can inspect and replay it.
"""

from __future__ import annotations

import logging
import random
import traceback
import uuid
from typing import Any

from celery import Task
from celery.exceptions import Retry
from sqlalchemy.dialects.postgresql import insert

from backend.config import get_settings
from backend.events import inflight, registry
from backend.events.models import DeadLetter, InboxEntry
from backend.events.outbox import EventContext, acting
from backend.workers import resources
from backend.workers.celery_app import celery_app
from tenancy.celery import TenantTask
from tenancy.context import require_tenant

log = logging.getLogger(__name__)


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: exponential, capped, with "equal jitter"
    (half fixed, half random) so failed handlers of a burst do not retry in lockstep."""
    settings = get_settings()
    cap = min(settings.event_retry_max_seconds, settings.event_retry_base_seconds * 2**retries)
    return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 (spreading retries, not secrets)


def handle_once(envelope: dict[str, Any], handler: registry.Handler) -> bool:
    """Run ``handler`` on the event unless the inbox says it ran; whether it ran now."""
    event_id = uuid.UUID(envelope["id"])
    actor = envelope.get("actor") or {}
    context = EventContext(
        actor_type="system",
        actor_id=None,
        request_id=f"event:{envelope['id']}",
        trace=dict(envelope.get("trace") or {}),
    )
    with resources.tenant_job_session() as session, acting(context):
        claimed = session.execute(
            insert(InboxEntry)
            .values(event_id=event_id, handler=handler.name)
            .on_conflict_do_nothing()
            .returning(InboxEntry.event_id)
        ).first()
        if claimed is None:
            return False
        handler.run(session, envelope)
    log.debug("event %s (%s) handled by %s for %s", event_id, envelope["type"], handler, actor)
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


@celery_app.task(name="events.handle", base=TenantTask, bind=True, acks_late=True)
def handle(self: Task, envelope: dict[str, Any], handler: str) -> str:
    """Deliver one event to one handler (see the module docstring)."""
    tenant = require_tenant()
    found = registry.by_name(handler)
    settings = get_settings()
    final = True
    try:
        if found is None:
            raise LookupError(f"no handler named {handler!r} in this release")
        return "handled" if handle_once(envelope, found) else "duplicate"
    except Exception as exc:
        if self.request.retries < settings.event_max_retries:
            final = False
            raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
        try:
            dead_letter(envelope, handler, exc, self.request.retries + 1)
        except Exception as lost:
            # Nowhere to put it yet (PostgreSQL away): keep retrying rather than drop it.
            final = False
            raise self.retry(
                exc=lost, countdown=backoff(self.request.retries), max_retries=None
            ) from lost
        return "dead-lettered"
    finally:
        if final:
            inflight.release(resources.redis(), tenant.id, envelope["id"], handler)


__all__ = ["Retry", "backoff", "handle", "handle_once"]
