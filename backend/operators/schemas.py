from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class OperatorLogin(BaseModel):
    """A login looks an account up: any email-shaped string is a fair question (401 when no
    operator has it), not only the addresses email-validator deems deliverable (it refuses
    special-use domains such as ``.test``, which the schema's ``format: email`` allows)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\x00]+@[^@\x00]+$")
    password: str = Field(min_length=1, max_length=128)


class OperatorCreate(BaseModel):
    """Input of `tenantflow operators create` (validated like an API body)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str = Field(default="", max_length=200)
    password: str = Field(min_length=10, max_length=128, description="10-128 characters.")


class OperatorTokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")
