"""Bodies of the platform API for plans and per-tenant limits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.kit.types import JsonInt

PolicyName = Literal["tenant", "user", "write", "auth", "concurrency"]
PerMinute = Annotated[JsonInt, Field(ge=1, le=1_000_000_000, description="Requests per minute.")]
InFlight = Annotated[JsonInt, Field(ge=1, le=1_000_000, description="Requests in flight.")]


class PlanIn(BaseModel):
    """A plan's limits. Rate limits count requests per minute; see docs/ratelimit.md."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: PerMinute = Field(description="Every request of one tenant.")
    user_requests_per_minute: PerMinute = Field(
        description="One caller: a user, an API key, or a client address without a credential."
    )
    write_requests_per_minute: PerMinute = Field(
        description="One tenant's requests other than GET, HEAD and OPTIONS."
    )
    auth_requests_per_minute: PerMinute = Field(
        description="One client address on /api/v1/auth/ (login, refresh, ...)."
    )
    concurrent_requests: InFlight | None = Field(
        default=None, description="One tenant's requests in flight; null: no limit."
    )
    shadow: list[PolicyName] = Field(
        default_factory=list,
        description="Policies that only count and log would-be refusals (safe rollout).",
    )
    fail_closed: list[PolicyName] = Field(
        default_factory=lambda: ["auth"],  # type: ignore[arg-type,return-value]
        description="Policies that refuse (503) while Redis is unavailable; the others admit.",
    )

    @field_validator("shadow", "fail_closed")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class PlanOut(PlanIn):
    name: str
    updated_at: dt.datetime


class LimitsIn(BaseModel):
    """Overrides of the tenant's plan: a number sets one, null clears it, a field left out
    stays as it is."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: PerMinute | None = None
    user_requests_per_minute: PerMinute | None = None
    write_requests_per_minute: PerMinute | None = None
    auth_requests_per_minute: PerMinute | None = None
    concurrent_requests: InFlight | None = None


class Limits(BaseModel):
    requests_per_minute: int | None
    user_requests_per_minute: int | None
    write_requests_per_minute: int | None
    auth_requests_per_minute: int | None
    concurrent_requests: int | None


class LimitsOut(BaseModel):
    tenant: str
    plan: str
    overrides: Limits = Field(description="What this tenant has set; null: the plan's value.")
    effective: Limits = Field(description="What applies to the tenant now.")


class LimitAuditEntry(BaseModel):
    """One change of a plan or of a tenant's overrides (the flags' AuditEntry without their
    action and version: a plan is never created or deleted, and limits have no versions)."""

    id: int
    kind: Literal["plan", "tenant"]
    name: str = Field(description="The plan's name, or the tenant's slug.")
    tenant_id: uuid.UUID | None
    actor: str = Field(description="An operator's email, platform-token, or cli:<login name>.")
    at: dt.datetime
    before: dict[str, Any] | None = Field(
        description="The plan's limits, or the tenant's overrides, before; null: no overrides."
    )
    after: dict[str, Any] | None
