"""The bench's event and its handler (the worker loads this module with -I)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from backend.events import registry
from backend.events.types import DomainEvent


class BenchTick(DomainEvent):
    aggregate_type = "project"
    aggregate_field = "project_id"
    project_id: uuid.UUID
    sent: float  # time.time() when the producer recorded it


def _nothing(session: Session, event: registry.Envelope) -> None:
    """The inbox entry is the whole effect: the figures are the pipeline's own cost."""


registry.register("BenchTick", registry.Handler("bench.tick", _nothing))
