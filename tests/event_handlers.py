"""Handlers the event tests add (the worker loads this module with ``-I tests.event_handlers``).

``Probe`` events carry a project id; the handlers change that project so a test can count what
happened: ``append`` adds one character to its description on every run (so a second run of one
event would show), ``always_fails`` never succeeds, ``flaky_append`` fails while the Redis key
``flaky_key(project id)`` exists and appends otherwise (a handler an operator "fixes").
"""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.events import registry
from backend.events.types import DomainEvent
from backend.projects.models import Project


class Probe(DomainEvent):
    aggregate_type = "project"
    aggregate_field = "project_id"
    project_id: uuid.UUID
    mark: str = "x"


class DoomedProbe(Probe):
    pass


class FlakyProbe(Probe):
    pass


def flaky_key(project_id: uuid.UUID) -> str:
    return f"tests:flaky:{project_id}"


def _append(session: Session, event: registry.Envelope) -> None:
    project_id = uuid.UUID(event["payload"]["project_id"])
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(description=Project.description + event["payload"]["mark"])
    )


def _always_fails(session: Session, event: registry.Envelope) -> None:
    raise RuntimeError(f"probe handler refuses event {event['id']}")


def _flaky_append(session: Session, event: registry.Envelope) -> None:
    from backend.workers import resources

    if resources.redis().exists(flaky_key(uuid.UUID(event["payload"]["project_id"]))):
        raise RuntimeError(f"flaky handler is broken for event {event['id']}")
    _append(session, event)


registry.register("Probe", registry.Handler("tests.append", _append))
registry.register("DoomedProbe", registry.Handler("tests.always_fails", _always_fails))
registry.register("FlakyProbe", registry.Handler("tests.flaky_append", _flaky_append))
