"""Which handlers react to which event type: the one place consumers are registered.

A handler takes the job's tenant session and the event's envelope. It runs in its own tenant
transaction together with its inbox entry (backend/events/jobs.py), so it may change rows
freely: a redelivered event is skipped before the handler runs. Handlers are named; the name
is what the inbox and the dead letters record, so renaming one replays every event to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sqla_event
from sqlalchemy.orm import Session

from backend.analytics import projection

Envelope = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Handler:
    name: str
    run: Callable[[Session, Envelope], None]


def _recount_project(session: Session, event: Envelope) -> None:
    projection.recompute(session, uuid.UUID(event["payload"]["project_id"]))
    # Stats read their counts from the projection once it is built: figures cached before
    # this commit are stale after it.
    tenant_id = uuid.UUID(event["tenant"])
    sqla_event.listen(
        session, "after_commit", lambda _s: projection.stats_changed(tenant_id), once=True
    )


RECOUNT = Handler("analytics.recount_project", _recount_project)

HANDLERS: dict[str, tuple[Handler, ...]] = {
    "TaskCreated": (RECOUNT,),
    "TaskStatusChanged": (RECOUNT,),
    "TaskDeleted": (RECOUNT,),
}


def register(event_type: str, handler: Handler) -> None:
    """Add a handler outside this module: for tests (the relay and the worker must both import
    the module that calls this, so both see the same handlers)."""
    if by_name(handler.name) is not None:
        return
    HANDLERS[event_type] = (*HANDLERS.get(event_type, ()), handler)


def handlers_for(event_type: str) -> tuple[Handler, ...]:
    return HANDLERS.get(event_type, ())


def by_name(name: str) -> Handler | None:
    for handlers in HANDLERS.values():
        for handler in handlers:
            if handler.name == name:
                return handler
    return None
