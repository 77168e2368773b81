"""Input types with JSON Schema's strictness: ``false`` is not an integer, ``"3"`` is not a
number, ``2.0`` is an integer (JSON Schema counts a number with a zero fraction as one).

Every request model derives from ``InputModel`` (unknown fields are refused) and uses these
types for integers, numbers, booleans, dates and times, so no value is coerced across JSON
types. (Pydantic's model-wide strict mode cannot be used: FastAPI validates the decoded JSON in
Python mode, where strict mode refuses ISO date strings and UUID strings.)
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return float(value)


def _json_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string in ISO 8601 format")
    return value


#: An integer as JSON Schema defines it (2.0 is one; true and "2" are not).
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
#: A number (integer or fraction; never a string or a boolean).
JsonNumber = Annotated[float, BeforeValidator(_json_number)]


#: true or false only (not 1, "true" or "yes").
JsonBool = StrictBool
#: A calendar date as an ISO 8601 string (not a timestamp number).
JsonDate = Annotated[dt.date, BeforeValidator(_json_string)]
#: A date and time with a UTC offset, as an ISO 8601 string.
JsonDateTime = Annotated[AwareDatetime, BeforeValidator(_json_string)]


def _email(value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return checked.normalized


#: An email address (RFC 5322 syntax, normalised). Unlike pydantic's EmailStr it accepts
#: special-use domains (.test, .local, ...): JSON Schema's ``format: email`` does, and whether
#: a domain takes mail is the mail server's call, not the API's.
Email = Annotated[
    str, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email"})
]


def drop_null(schema: dict[str, Any]) -> None:
    """json_schema_extra for a field that may be left out but is never null: removes the null
    branch Optional adds, so clients (and schema-driven tests) see no nullable type."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == 1:
        del schema["anyOf"]
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def omittable(**constraints: Any) -> Any:
    """``name: FreeText | None = omittable(max_length=200)``: optional, documented as not
    nullable. Refuse an explicit null with a ``mode="before"`` validator in the model."""
    return Field(default=None, json_schema_extra=drop_null, **constraints)


class InputModel(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


#: The before-validator of JSON numbers, for constrained aliases: put it after the Field so
#: the JSON Schema shows minimum/maximum, e.g.
#: ``Annotated[float, Field(ge=0), BeforeValidator(json_number)]``.
json_number = _json_number


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


#: A query-string date: exactly YYYY-MM-DD (not "0" or a timestamp, which pydantic would take).
QueryDate = Annotated[dt.date, BeforeValidator(_iso_date)]


_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})$"
)


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.fullmatch(value):
        raise ValueError(
            "must be an ISO 8601 date and time with a time zone, e.g. 2026-01-31T12:00Z"
        )
    return value


#: A query-string instant: ISO 8601 with a time zone (not a bare number, which pydantic would
#: read as a Unix time, nor a local time, which names no instant).
QueryDateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]
