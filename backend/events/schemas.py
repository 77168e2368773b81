from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
