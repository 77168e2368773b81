from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from backend.kit.text import FreeText
from tenancy.naming import InvalidSlug, validate_slug

Plan = Literal["free", "pro", "enterprise"]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(
        min_length=2,
        max_length=40,
        examples=["acme"],
        description="2-40 chars: a lowercase letter, then [a-z0-9-]; not reserved.",
    )
    name: FreeText = Field(min_length=1, max_length=200)
    plan: Plan = "free"
    owner_email: EmailStr
    owner_password: FreeText = Field(min_length=10, max_length=128)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        try:
            return validate_slug(value)
        except InvalidSlug as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FreeText | None = Field(default=None, min_length=1, max_length=200)
    plan: Plan | None = None
    status: Literal["active", "suspended"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    plan: str
    status: Literal["active", "suspended", "deleting"]
    created_at: dt.datetime
    schema_revision: str | None = None
