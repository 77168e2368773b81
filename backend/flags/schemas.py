"""Bodies of the flags APIs (operators' definitions are Unleash JSON: backend/flags/model.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.flags.model import Feature, Segment
from backend.kit.errors import Problem
from backend.kit.types import JsonBool

OVERRIDABLE = "tenantOverridable"


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: JsonBool = Field(description="The flag's answer for every caller of this tenant.")


class OverrideOut(BaseModel):
    name: str
    enabled: bool


class VariantOut(BaseModel):
    name: str
    enabled: bool
    payload: dict[str, Any] | None = Field(
        description="The variant's payload, {type, value} as defined, or null."
    )


class FlagValue(BaseModel):
    enabled: bool
    variant: VariantOut


class FlagsOut(BaseModel):
    flags: dict[str, FlagValue] = Field(description="Every flag, evaluated for the caller.")


class AuditEntry(BaseModel):
    id: int
    kind: str
    name: str
    tenant_id: uuid.UUID | None
    action: str
    actor: str
    at: dt.datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    version: int


class FeatureIn(Feature):
    """An Unleash feature as a request body: JSON types taken as they are ("yes" is not a
    boolean); ``tenantOverridable: true`` lets tenant admins turn it on or off for their
    tenant."""

    model_config = ConfigDict(strict=True)


class SegmentIn(Segment):
    model_config = ConfigDict(strict=True)


def tenant_overridable(feature: FeatureIn) -> bool:
    """The body's ``tenantOverridable`` (false when absent); 422 unless a boolean."""
    overridable = (feature.model_extra or {}).get(OVERRIDABLE, False)
    if not isinstance(overridable, bool):
        raise Problem(422, "validation-error", f"{OVERRIDABLE} must be true or false.")
    return overridable


def flag_out(row: dict[str, Any]) -> dict[str, Any]:
    """A stored flag as operators see it: the feature, with our fields beside Unleash's."""
    return {
        **row["definition"],
        OVERRIDABLE: row["tenant_overridable"],
        "updatedAt": row["updated_at"].isoformat(),
        "updatedBy": row["updated_by"],
    }
