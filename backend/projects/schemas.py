from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from backend.kit.text import FreeText


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value.strip() if value is not None else None


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FreeText = Field(min_length=1, max_length=200)
    description: FreeText = Field(default="", max_length=10_000)

    _name = field_validator("name")(_not_blank)


class ProjectUpdate(BaseModel):
    """Fields left out stay as they are; ``description: null`` clears the description."""

    model_config = ConfigDict(extra="forbid")

    name: FreeText | None = Field(default=None, min_length=1, max_length=200)
    description: FreeText | None = Field(default=None, max_length=10_000)
    archived: StrictBool | None = None

    _name = field_validator("name")(_not_blank)

    @field_validator("name", "archived", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only an explicit null reaches this (defaults are not validated): it would erase a
        # required value, so it is a validation error listed like any other.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    archived: bool
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
