"""Recording events: one outbox row per event, in the session of the change it describes.

The service that makes a change calls ``record(session, SomeEvent(...))``; the row commits or
rolls back with the change (the request's or the job's unit of work owns the commit). A trigger
on the outbox notifies the relay at commit. Who acted and the request's trace context come from
``EventContext``, set by the request's authentication (or by a job).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.events.models import OutboxEvent
from backend.events.types import DomainEvent
from tenancy.context import require_tenant

ENVELOPE_FIELDS = (
    "id",
    "type",
    "version",
    "tenant",
    "occurred_at",
    "actor",
    "aggregate",
    "payload",
    "trace",
)


@dataclass(frozen=True, slots=True)
class EventContext:
    """Who causes the events recorded meanwhile, and the request they belong to."""

    actor_type: str = "system"  # user, api_key, anonymous, system
    actor_id: uuid.UUID | None = None
    request_id: str | None = None
    trace: dict[str, str] = field(default_factory=dict)  # never mutated after creation


SYSTEM = EventContext()
_context: contextvars.ContextVar[EventContext | None] = contextvars.ContextVar(
    "tf_event_context", default=None
)


def set_context(context: EventContext) -> None:
    """Set for the rest of the current request (EventContextMiddleware restores the previous
    context when the request ends)."""
    _context.set(context)


@contextmanager
def acting(context: EventContext) -> Iterator[None]:
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)


class EventContextMiddleware:
    """Each HTTP or WebSocket request starts as an anonymous actor with its request id and
    trace context (authentication then names the caller), and leaves no context behind."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.get("state") or {}
        token = _context.set(
            EventContext(
                actor_type="anonymous",
                request_id=state.get("request_id"),
                trace=trace_context(Headers(scope=scope)),
            )
        )
        try:
            await self.app(scope, receive, send)
        finally:
            _context.reset(token)


def trace_context(headers: Any = None) -> dict[str, str]:
    """W3C trace context: the current OpenTelemetry span's, else the request's own headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier and headers is not None:
        for name in ("traceparent", "tracestate"):
            value = headers.get(name)
            if value and len(value) <= 512:
                carrier[name] = value
    return carrier


def row_of(event: DomainEvent) -> OutboxEvent:
    """The outbox row of ``event`` in the current tenant and context."""
    context = _context.get() or SYSTEM
    require_tenant()  # an event belongs to a tenant: never record one outside of it
    return OutboxEvent(
        id=uuid.uuid4(),
        type=event.type,
        version=event.version,
        occurred_at=dt.datetime.now(dt.UTC),
        actor_type=context.actor_type,
        actor_id=context.actor_id,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id(),
        payload=event.model_dump(mode="json"),
        trace=dict(context.trace),
        request_id=context.request_id,
    )


def record(session: AsyncSession | Session, event: DomainEvent) -> None:
    """Add ``event`` to the session's unit of work: it commits with the change, or not at all."""
    session.add(row_of(event))


def envelope(row: OutboxEvent | Any, tenant_id: uuid.UUID) -> dict[str, Any]:
    """The JSON envelope of a stored event (the event log, the live feed and consumers)."""
    return {
        "id": str(row.id),
        "type": row.type,
        "version": row.version,
        "tenant": str(tenant_id),
        "occurred_at": row.occurred_at.isoformat(),
        "actor": {
            "type": row.actor_type,
            "id": str(row.actor_id) if row.actor_id is not None else None,
        },
        "aggregate": {"type": row.aggregate_type, "id": str(row.aggregate_id)},
        "payload": row.payload,
        "trace": row.trace or {},
        "seq": row.seq,
    }
