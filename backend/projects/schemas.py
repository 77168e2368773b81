from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from backend.kit.text import FreeText, NotBlankText
from backend.kit.types import InputModel, omittable
from backend.projects.keys import KEY_PATTERN


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value.strip() if value is not None else None


class ProjectCreate(InputModel):
    name: NotBlankText = Field(min_length=1, max_length=200)
    key: str | None = Field(
        default=None,
        pattern=KEY_PATTERN,
        description="2-10 characters, A-Z and digits, starting with a letter; derived from the "
        "name when left out. Prefixes the project's task keys (OPS-42); never changes.",
    )
    description: FreeText = Field(default="", max_length=10_000)

    _name = field_validator("name")(_not_blank)


class ProjectUpdate(InputModel):
    """Fields left out stay as they are; ``description: null`` clears the description."""

    name: NotBlankText | None = omittable(min_length=1, max_length=200)
    description: FreeText | None = Field(default=None, max_length=10_000)
    archived: StrictBool | None = omittable()

    _name = field_validator("name")(_not_blank)

    @field_validator("name", "archived", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only an explicit null reaches this (defaults are not validated): it would erase a
        # required value, so it is a validation error listed like any other.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class StatusRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    category: Literal["todo", "in_progress", "done"]
    position: int


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    description: str
    archived: bool
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = Field(description="Changes on every update; the ETag is built from it.")
