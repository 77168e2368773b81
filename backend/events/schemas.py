"""The event envelope as the API shows it, and dead letters as operators see them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Actor(BaseModel):
    type: str = Field(description="user, api_key, anonymous or system")
    id: uuid.UUID | None


class Aggregate(BaseModel):
    type: str = Field(description="What changed: project, task, label, invite, user")
    id: uuid.UUID


class EventRead(BaseModel):
    id: uuid.UUID
    type: str = Field(description="Past tense: TaskCreated, TaskStatusChanged, ...")
    version: int = Field(description="Version of this type's payload")
    tenant: uuid.UUID
    occurred_at: dt.datetime
    actor: Actor
    aggregate: Aggregate
    payload: dict[str, Any]
    trace: dict[str, str] = Field(description="W3C trace context (traceparent, tracestate)")
    seq: int = Field(description="Commit sequence within the tenant (newer events: higher)")


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant: str = Field(description="The tenant's slug.")
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    handler: str = Field(description="The handler that failed on the event.")
    error: str = Field(description="The last attempt's exception (type and message).")
    attempts: int
    failed_at: dt.datetime
    replayed_at: dt.datetime | None = Field(
        description="When an operator last replayed it; null if never."
    )
    envelope: dict[str, Any] = Field(description="The event as the handler received it.")
