"""The event envelope as the API shows it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field


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
