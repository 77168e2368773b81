"""Opaque keyset cursors: base64url JSON of the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from backend.kit.errors import Problem

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid() -> Problem:
    return Problem(422, "invalid-cursor", "cursor is not one this API returned")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _invalid() from exc
    if not isinstance(values, list) or len(values) != arity:
        raise _invalid()
    return values


def encode_keyset_cursor(created_at: dt.datetime, row_id: uuid.UUID) -> str:
    """The cursor after a row of a list ordered by ``(created_at, id)``."""
    return encode_cursor([created_at.isoformat(), str(row_id)])


def decode_keyset_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The ``(created_at, id)`` a cursor names; 422 invalid-cursor for anything else."""
    created_at, row_id = decode_cursor(cursor, 2)
    if not isinstance(created_at, str) or not isinstance(row_id, str):
        raise _invalid()
    try:
        when = dt.datetime.fromisoformat(created_at)
        ident = uuid.UUID(row_id)
    except ValueError as exc:
        raise _invalid() from exc
    if when.tzinfo is None:  # we only ever write timestamps with their offset
        raise _invalid()
    return when, ident
