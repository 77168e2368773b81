"""The evaluation context: who and where a flag is evaluated for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Unleash context field name -> attribute of `Context`. Anything else is a custom property.
STANDARD_FIELDS: dict[str, str] = {
    "userId": "user_id",
    "sessionId": "session_id",
    "remoteAddress": "remote_address",
    "environment": "environment",
    "appName": "app_name",
    "tenantId": "tenant_id",
    "plan": "plan",
}

Resolver = Callable[["Context"], str | None]


@dataclass(frozen=True, slots=True)
class Context:
    """What a flag is evaluated against; every field is optional."""

    user_id: str | None = None
    session_id: str | None = None
    remote_address: str | None = None
    environment: str | None = None
    app_name: str | None = None
    current_time: datetime | None = None
    tenant_id: str | None = None
    plan: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        """Build a context from Unleash's JSON shape (camelCase keys, `properties` object).

        Unknown top-level keys become properties, as Unleash SDKs resolve them too; null
        values count as absent. Raises ValueError for an unparsable `currentTime`."""
        kwargs: dict[str, Any] = {}
        properties: dict[str, str] = {}
        for key, value in data.items():
            if value is None:
                continue
            if key == "properties":
                if not isinstance(value, Mapping):
                    raise ValueError("context properties must be an object")
                properties.update({str(k): _text(v) for k, v in value.items() if v is not None})
            elif key == "currentTime":
                kwargs["current_time"] = parse_time(value)
            elif key in STANDARD_FIELDS:
                kwargs[STANDARD_FIELDS[key]] = _text(value)
            else:
                properties[key] = _text(value)
        return cls(properties=properties, **kwargs)

    def get(self, name: str) -> str | None:
        """The value of a context field by its Unleash name (slow path; the engine
        precompiles a `resolver` per field instead)."""
        return resolver(name)(self)


def _text(value: Any) -> str:
    if isinstance(value, bool):  # JSON true -> "true", as a JavaScript SDK would send it
        return "true" if value else "false"
    return str(value)


def parse_time(value: object) -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string; naive times are UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
    else:
        raise ValueError(f"not a date-time: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def resolver(name: str) -> Resolver:
    """A function reading one context field: a standard field (falling back to a property
    of the same name, as Unleash does), `currentTime` as ISO text, or a custom property."""
    if name == "currentTime":

        def current_time(ctx: Context) -> str | None:
            return (ctx.current_time or datetime.now(UTC)).isoformat()

        return current_time
    attribute = STANDARD_FIELDS.get(name)
    if attribute is None:

        def prop(ctx: Context) -> str | None:
            return ctx.properties.get(name)

        return prop

    def standard(ctx: Context) -> str | None:
        value: str | None = getattr(ctx, attribute)
        return value if value is not None else ctx.properties.get(name)

    return standard
