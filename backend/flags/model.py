"""Feature definitions in Unleash's client API shape (/api/client/features), validated.

Two modes. Strict (the default, what an API request body gets): unknown operators and
strategies, unparsable numbers, dates, versions, regexes and IP ranges, bad weights and
unknown segment ids are rejected with a message saying which. Lenient (`parse_state`, for
state an Unleash server or a spec file serves): such parts are kept and evaluate to "off",
as every Unleash SDK does, so one odd flag cannot take the others down. Unknown keys are
kept in both modes, as Unleash adds fields over time."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from backend.flags.constraints import compile_constraint
from backend.flags.regex import exponential_risk
from backend.flags.strategies import compile_parameters
from backend.flags.variants import weights_problem

LENIENT = {"lenient": True}


def _strict(info: ValidationInfo) -> bool:
    return not (isinstance(info.context, dict) and info.context.get("lenient"))


def _null_as_empty(value: Any) -> Any:
    return [] if value is None else value


def _scalar_text(value: Any) -> Any:
    # Unleash servers and exports write some numbers unquoted ("weight": 50, "value": 12).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
Name = Annotated[str, Field(min_length=1)]


T = TypeVar("T")
#: A list that Unleash may also send as null.
NullableList = Annotated[list[T], BeforeValidator(_null_as_empty)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Payload(_Model):
    type: str
    value: Text


class Override(_Model):
    context_name: Name
    values: NullableList[Text] = []


class VariantDefinition(_Model):
    name: Name
    weight: int = Field(ge=0, le=1000)
    weight_type: Literal["fix", "variable"] | None = None
    stickiness: str | None = None
    payload: Payload | None = None
    overrides: NullableList[Override] = []


class Constraint(_Model):
    context_name: Name
    operator: str
    values: NullableList[Text] = []
    value: Text | None = None
    inverted: bool = False
    case_insensitive: bool = False

    @model_validator(mode="after")
    def _compiles(self, info: ValidationInfo) -> Constraint:
        if _strict(info):
            compile_constraint(self)  # its ValueError names the problem
            if self.operator == "REGEX" and exponential_risk(self.value or ""):
                raise ValueError(
                    f"regular expression {self.value!r} nests unbounded repetition (like "
                    "(a+)+), which can take exponential time on some inputs; rewrite it "
                    "without a repeated group that itself repeats"
                )
        return self


class Strategy(_Model):
    name: Name
    parameters: dict[str, Text] = {}
    constraints: NullableList[Constraint] = []
    segments: NullableList[int] = []
    variants: NullableList[VariantDefinition] = []
    #: Switched off in the admin UI without being deleted: never matches.
    disabled: bool = False
    #: Evaluation order, lowest first (Unleash's server sorts by it before serving);
    #: one without sorts as 9999 (the default of Unleash's column); ties keep the given order.
    sort_order: int | float | None = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _no_null_parameters(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> Strategy:
        if _strict(info):
            compile_parameters(self.name, self.parameters, "")
            _check_weights(self.variants, f"strategy {self.name!r}")
        return self


class Dependency(_Model):
    feature: Name
    enabled: bool = True
    variants: NullableList[str] = []


class Feature(_Model):
    """One flag, as Unleash serves it; strict validation unless parsed via `parse_state`."""

    name: Name
    enabled: bool
    strategies: NullableList[Strategy] = []
    variants: NullableList[VariantDefinition] = []
    dependencies: NullableList[Dependency] = []
    impression_data: bool = False
    project: str = "default"

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> Feature:
        if _strict(info):
            _check_weights(self.variants, "feature")
            if any(dep.feature == self.name for dep in self.dependencies):
                raise ValueError(f"feature {self.name!r} depends on itself")
        return self


class Segment(_Model):
    id: int
    name: str | None = None
    constraints: NullableList[Constraint] = []


class FeatureState(_Model):
    """A client features response: the flags and the segments their strategies refer to."""

    version: int = 1
    features: list[Feature]
    segments: NullableList[Segment] = []

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> FeatureState:
        if not _strict(info):
            return self
        _no_duplicates([f.name for f in self.features], "feature name")
        _no_duplicates([s.id for s in self.segments], "segment id")
        known = {s.id for s in self.segments}
        for feature in self.features:
            for strategy in feature.strategies:
                unknown = sorted(set(strategy.segments) - known)
                if unknown:
                    raise ValueError(
                        f"feature {feature.name!r} refers to unknown segments {unknown}"
                    )
        return self


def _check_weights(variants: list[VariantDefinition], where: str) -> None:
    problem = weights_problem([(v.weight, v.weight_type) for v in variants])
    if problem is not None:
        raise ValueError(f"{where} variants: {problem}")
    _no_duplicates([v.name for v in variants], "variant name")


def _no_duplicates(items: list[Any], what: str) -> None:
    repeated = sorted(str(item) for item, count in Counter(items).items() if count > 1)
    if repeated:
        raise ValueError(f"duplicate {what}: {', '.join(repeated)}")


def parse_state(data: Any, *, strict: bool = False) -> FeatureState:
    """Validate a client features document; lenient unless `strict` (see the module doc).

    Raises pydantic.ValidationError when even lenient parsing cannot make sense of it."""
    return FeatureState.model_validate(data, context=None if strict else LENIENT)
