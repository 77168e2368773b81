"""An OpenFeature provider over the flag engine, so code can ask through the standard client.

Values follow the convention of Unleash's own OpenFeature providers: a boolean is whether
the flag is on; strings, numbers and objects come from the chosen variant's payload, and
the caller's default stands whenever the flag is off or no variant with a payload applies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import (
    ErrorCode,
    FlagNotFoundError,
    InvalidContextError,
    OpenFeatureError,
    ParseError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from backend.flags.context import STANDARD_FIELDS, Context, parse_time
from backend.flags.engine import Variant

T = TypeVar("T")
Object = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class Evaluator(Protocol):
    """What the provider evaluates against: an `Engine`, or storage's per-tenant view."""

    def variant(self, name: str, context: Context) -> Variant: ...

    def __contains__(self, name: str) -> bool: ...


#: OpenFeature attribute name (camelCase as Unleash spells it, or snake_case) -> Context field.
_FIELDS: dict[str, str] = {
    **STANDARD_FIELDS,
    **{field: field for field in STANDARD_FIELDS.values()},
}


class TenantflowProvider(AbstractProvider):
    """Resolves OpenFeature flags with whatever evaluator `source` returns at that moment."""

    def __init__(self, source: Callable[[], Evaluator]) -> None:
        super().__init__()
        # Called on every resolution, never cached: storage swaps the engine when
        # definitions change, and the next evaluation must see the new one.
        self._source = source

    def get_metadata(self) -> Metadata:
        return Metadata(name="tenantflow")

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, _boolean)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _string)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _integer)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, _float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Object,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Object]:
        return self._resolve(flag_key, default_value, evaluation_context, _object)

    def _resolve(
        self,
        flag_key: str,
        default: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[Variant, T], FlagResolutionDetails[T]],
    ) -> FlagResolutionDetails[T]:
        # A flag lookup must never take a request down: every failure, ours or the
        # source's, becomes the default value plus an error code the client's error hooks
        # see. The type name is kept in the message because the traceback is not.
        try:
            evaluator = self._source()
            if flag_key not in evaluator:
                raise FlagNotFoundError(f"no flag named {flag_key!r}")
            variant = evaluator.variant(flag_key, to_context(evaluation_context))
            return convert(variant, default)
        except OpenFeatureError as exc:
            code, message = exc.error_code, exc.error_message
        except Exception as exc:
            code, message = ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}"
        return FlagResolutionDetails(
            default, error_code=code, error_message=message, reason=Reason.ERROR
        )


def to_context(evaluation_context: EvaluationContext | None) -> Context:
    """Our Context for an OpenFeature one; InvalidContextError for an unreadable time."""
    if evaluation_context is None:
        return Context()
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in evaluation_context.attributes.items():
        if key in ("currentTime", "current_time"):
            try:
                fields["current_time"] = parse_time(value)
            except ValueError as exc:
                raise InvalidContextError(f"{key}: {exc}") from None
            continue
        text = _text(value)
        if text is None:
            continue
        if key in _FIELDS:
            fields[_FIELDS[key]] = text
        else:
            properties[key] = text
    # The targeting key is OpenFeature's user id; a userId attribute only fills in for it.
    if evaluation_context.targeting_key is not None:
        fields["user_id"] = evaluation_context.targeting_key
    return Context(properties=properties, **fields)


def _text(value: object) -> str | None:
    """A context value as Unleash compares it; None for null and for lists or objects,
    which have no Unleash equivalent and are left for other providers and hooks."""
    if isinstance(value, bool):  # true/false, as the JavaScript SDKs send them
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _name(variant: Variant) -> str | None:
    # Unleash names the absence of a variant "disabled"; as an OpenFeature variant next
    # to the value True that would read as a contradiction, so there is no name instead.
    return variant.name if variant.enabled else None


def _metadata(variant: Variant) -> dict[str, bool | int | float | str]:
    return {"feature_enabled": variant.feature_enabled}


def _boolean(variant: Variant, default: bool) -> FlagResolutionDetails[bool]:
    # The engine does not tell "switched off" from "no strategy matched this context";
    # both read as DISABLED, which is what the caller needs to know: the flag is off here.
    return FlagResolutionDetails(
        variant.feature_enabled,
        reason=Reason.TARGETING_MATCH if variant.feature_enabled else Reason.DISABLED,
        variant=_name(variant),
        flag_metadata=_metadata(variant),
    )


def _payload(variant: Variant, types: tuple[str, ...]) -> str | None:
    """The payload text to convert, or None when the default stands; TypeMismatchError for
    a payload of another type than the resolution asks for."""
    if not variant.enabled or variant.payload is None:
        return None
    if variant.payload.type not in types:
        raise TypeMismatchError(
            f"variant {variant.name!r} has a {variant.payload.type!r} payload, "
            f"not {' or '.join(repr(t) for t in types)}"
        )
    return variant.payload.value


def _details(variant: Variant, default: T, value: T | None) -> FlagResolutionDetails[T]:
    if value is not None:
        return FlagResolutionDetails(
            value,
            reason=Reason.TARGETING_MATCH,
            variant=_name(variant),
            flag_metadata=_metadata(variant),
        )
    return FlagResolutionDetails(
        default,
        reason=Reason.DEFAULT if variant.feature_enabled else Reason.DISABLED,
        variant=_name(variant),
        flag_metadata=_metadata(variant),
    )


def _string(variant: Variant, default: str) -> FlagResolutionDetails[str]:
    return _details(variant, default, _payload(variant, ("string", "csv")))


def _integer(variant: Variant, default: int) -> FlagResolutionDetails[int]:
    text = _payload(variant, ("number",))
    if text is None:
        return _details(variant, default, None)
    try:
        return _details(variant, default, int(text))
    except ValueError:
        pass
    # "3.0" is an integer written as JSON numbers sometimes are; "3.5" is not.
    number = _number(text, variant)
    if not number.is_integer():
        raise ParseError(f"payload {text!r} of variant {variant.name!r} is not an integer")
    return _details(variant, default, int(number))


def _float(variant: Variant, default: float) -> FlagResolutionDetails[float]:
    text = _payload(variant, ("number",))
    return _details(variant, default, None if text is None else _number(text, variant))


def _number(text: str, variant: Variant) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ParseError(f"payload {text!r} of variant {variant.name!r} is not a number") from None
    if not math.isfinite(number):  # JSON has no NaN or infinity; a payload should not either
        raise ParseError(f"payload {text!r} of variant {variant.name!r} is not a finite number")
    return number


def _object(variant: Variant, default: Object) -> FlagResolutionDetails[Object]:
    text = _payload(variant, ("json",))
    if text is None:
        return _details(variant, default, None)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"payload of variant {variant.name!r} is not JSON: {exc}") from None
    if not isinstance(value, dict | list):
        raise TypeMismatchError(
            f"payload of variant {variant.name!r} is JSON {type(value).__name__}, "
            "not an object or array"
        )
    return _details(variant, default, value)


def install(source: Evaluator) -> None:
    """Make ``source`` (the process's flag store) OpenFeature's provider for this process."""
    from openfeature import api

    api.set_provider(TenantflowProvider(lambda: source))
