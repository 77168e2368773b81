from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from backend.kit.text import FreeText
from backend.kit.types import Email, JsonBool, omittable

Role = Literal["owner", "admin", "member", "viewer"]


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str = Field(description="Opaque; rotated on every use of /auth/refresh.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=2048)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: Email
    name: str
    role: Role
    is_active: bool
    created_at: dt.datetime


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = omittable()
    is_active: JsonBool | None = omittable()

    @field_validator("role", "is_active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FreeText = Field(min_length=1, max_length=200)
    role: Literal["admin", "member", "viewer"] = Field(
        description="At most the creator's role; never owner. The key acts with the lower of "
        "this and its creator's current role, and dies when its creator is deactivated."
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="With a timezone; null for a key that does not expire."
    )


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    role: Role
    prefix: str = Field(description="The first characters of the secret, to recognise it.")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret; shown this once, stored only as a hash.")


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: dt.datetime
    action: str
    actor_type: str
    actor_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, object]


Password = Field(min_length=10, max_length=128, description="10-128 characters, no NUL.")


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role = "member"


class InviteRead(BaseModel):
    id: uuid.UUID
    email: Email
    role: Role
    invited_by: uuid.UUID | None = None
    created_at: dt.datetime
    expires_at: dt.datetime


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128)
    password: FreeText = Password
    name: FreeText = Field(default="", max_length=200)


class ForgotPassword(BaseModel):
    email: Email


class ResetPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128)
    password: FreeText = Password


class Accepted(BaseModel):
    detail: str
