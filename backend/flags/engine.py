"""The flag engine: features compiled once, then evaluated without I/O or allocation-heavy
work (a few dictionary lookups and closure calls per flag)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from backend.flags.constraints import Check, compile_lenient
from backend.flags.context import Context
from backend.flags.model import (
    Dependency,
    Feature,
    FeatureState,
    Payload,
    Segment,
    Strategy,
    parse_state,
)
from backend.flags.strategies import compile_parameters_lenient
from backend.flags.variants import VariantSet

EMPTY_CONTEXT = Context()


@dataclass(frozen=True, slots=True)
class Variant:
    """The variant a context gets; `feature_enabled` says whether the flag itself is on."""

    name: str
    enabled: bool
    payload: Payload | None = None
    feature_enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Unleash's JSON shape (payload omitted when there is none)."""
        data: dict[str, Any] = {"name": self.name, "enabled": self.enabled}
        if self.payload is not None:
            data["payload"] = self.payload.model_dump(mode="json", include={"type", "value"})
        data["feature_enabled"] = self.feature_enabled
        return data


DISABLED = Variant("disabled", False, None, False)
_DISABLED_BUT_ON = Variant("disabled", False, None, True)


@dataclass(frozen=True, slots=True)
class _Strategy:
    check: Check
    variants: VariantSet | None


@dataclass(frozen=True, slots=True)
class _Feature:
    definition: Feature
    enabled: bool
    dependencies: tuple[Dependency, ...]
    strategies: tuple[_Strategy, ...]
    variants: VariantSet | None


_NO_STRATEGIES = _Strategy(lambda _: True, None)  # a flag without strategies is simply on


class Engine:
    """Evaluates a fixed set of features; build a new engine when definitions change."""

    def __init__(self, features: Iterable[Feature], segments: Iterable[Segment] = ()) -> None:
        segment_checks = {s.id: tuple(compile_lenient(c) for c in s.constraints) for s in segments}
        self._features: dict[str, _Feature] = {
            f.name: _compile_feature(f, segment_checks) for f in features
        }

    @classmethod
    def from_state(cls, state: FeatureState | Mapping[str, Any], *, strict: bool = False) -> Engine:
        """An engine for a client features document (validated leniently unless `strict`)."""
        if not isinstance(state, FeatureState):
            state = parse_state(state, strict=strict)
        return cls(state.features, state.segments)

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def __iter__(self) -> Iterator[str]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def feature(self, name: str) -> Feature | None:
        """The definition of a flag, or None."""
        compiled = self._features.get(name)
        return compiled.definition if compiled is not None else None

    def is_enabled(self, name: str, context: Context | None = None) -> bool:
        """Whether the flag is on for the context; an unknown flag is off."""
        feature = self._features.get(name)
        if feature is None:
            return False
        return self._match(feature, context or EMPTY_CONTEXT) is not None

    def variant(self, name: str, context: Context | None = None) -> Variant:
        """The variant for the context; "disabled" when the flag is off, unknown, or on
        without variants."""
        feature = self._features.get(name)
        if feature is None:
            return DISABLED
        ctx = context or EMPTY_CONTEXT
        return self._variant(feature, self._match(feature, ctx), ctx)

    def evaluate_all(self, context: Context | None = None) -> dict[str, Variant]:
        """Every flag's variant for one context (what a front-end SDK fetches)."""
        ctx = context or EMPTY_CONTEXT
        return {
            name: self._variant(f, self._match(f, ctx), ctx) for name, f in self._features.items()
        }

    def _match(self, feature: _Feature, ctx: Context) -> _Strategy | None:
        """The strategy that turns the flag on for ctx, or None when it is off."""
        if not feature.enabled:
            return None
        for dependency in feature.dependencies:
            if not self._satisfied(dependency, ctx):
                return None
        for strategy in feature.strategies:
            if strategy.check(ctx):
                return strategy
        return None

    def _satisfied(self, dependency: Dependency, ctx: Context) -> bool:
        parent = self._features.get(dependency.feature)
        # Unleash allows one level of dependencies: a parent with parents of its own (a
        # chain or a cycle) makes the child off, as does an unknown parent.
        if parent is None or parent.dependencies:
            return False
        matched = self._match(parent, ctx)
        if (matched is not None) != dependency.enabled:
            return False
        if dependency.variants:
            return self._variant(parent, matched, ctx).name in dependency.variants
        return True

    @staticmethod
    def _variant(feature: _Feature, matched: _Strategy | None, ctx: Context) -> Variant:
        if matched is None:
            return DISABLED
        variants = matched.variants or feature.variants
        chosen = variants.select(ctx) if variants is not None else None
        if chosen is None:
            return _DISABLED_BUT_ON
        return Variant(chosen.name, True, chosen.payload, True)


def _compile_feature(feature: Feature, segments: Mapping[int, tuple[Check, ...]]) -> _Feature:
    first_stickiness = feature.variants[0].stickiness if feature.variants else None
    return _Feature(
        definition=feature,
        enabled=feature.enabled,
        dependencies=tuple(feature.dependencies),
        strategies=tuple(
            _compile_strategy(s, feature.name, segments) for s in _in_order(feature.strategies)
        )
        or (_NO_STRATEGIES,),
        variants=VariantSet.build(feature.variants, feature.name, first_stickiness),
    )


def _in_order(strategies: list[Strategy]) -> list[Strategy]:
    """By ``sortOrder``, as Unleash's server serves them: a strategy without one sorts as
    9999 (the column default of Unleash's feature_strategies), ties keep the given order."""
    return sorted(strategies, key=lambda s: 9999 if s.sort_order is None else s.sort_order)


def _compile_strategy(
    strategy: Strategy, feature_name: str, segments: Mapping[int, tuple[Check, ...]]
) -> _Strategy:
    if strategy.disabled:  # kept, so that a flag whose strategies are all disabled is off
        return _Strategy(_off, None)
    rule = compile_parameters_lenient(strategy.name, strategy.parameters, feature_name)
    checks = [compile_lenient(c) for c in strategy.constraints]
    for segment_id in strategy.segments:
        found = segments.get(segment_id)
        if found is None:  # a dangling segment reference turns the strategy off
            rule = _off
            break
        checks.extend(found)
    variants = VariantSet.build(
        strategy.variants,
        strategy.parameters.get("groupId") or feature_name,
        strategy.parameters.get("stickiness"),
    )
    if not checks:
        return _Strategy(rule, variants)
    constraints = tuple(checks)

    def check(ctx: Context) -> bool:
        for constraint in constraints:
            if not constraint(ctx):
                return False
        return rule(ctx)

    return _Strategy(check, variants)


def _off(_: Context) -> bool:
    return False
