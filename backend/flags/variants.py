"""Variant selection: weights, stickiness, overrides (feature- and strategy-level)."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

from backend.flags.context import Context, Resolver, resolver
from backend.flags.strategies import normalized_hash

if TYPE_CHECKING:
    from backend.flags.model import VariantDefinition

VARIANT_SEED = 86028157
TOTAL_WEIGHT = 1000


def weights_problem(weights: Sequence[tuple[int, str | None]]) -> str | None:
    """Why (weight, weightType) pairs cannot split traffic, or None when they can."""
    if not weights:
        return None
    fixed = sum(w for w, kind in weights if kind == "fix")
    if not any(kind for _, kind in weights):
        return None if sum(w for w, _ in weights) > 0 else "the weights sum to 0"
    if fixed > TOTAL_WEIGHT:
        return f"the fix weights sum to {fixed}, over {TOTAL_WEIGHT}"
    if all(kind == "fix" for _, kind in weights) and fixed != TOTAL_WEIGHT:
        return f"every variant is fix, so the weights must sum to {TOTAL_WEIGHT}, not {fixed}"
    return None


def effective_weights(weights: Sequence[tuple[int, str | None]]) -> list[int]:
    """The weights to split traffic by. Without a "variable" variant they are used as
    given (what a server has already computed, or a legacy definition); otherwise the
    variable variants share what the fix ones leave of 1000, rounded down as the Unleash
    server does, so served weights come out unchanged."""
    if all(kind != "variable" for _, kind in weights):
        return [w for w, _ in weights]
    fixed = sum(w for w, kind in weights if kind == "fix")
    share = max(TOTAL_WEIGHT - fixed, 0) // sum(1 for _, kind in weights if kind != "fix")
    return [w if kind == "fix" else share for w, kind in weights]


@dataclass(frozen=True, slots=True)
class VariantSet:
    """Variants compiled for selection; `select` returns None when none applies."""

    variants: tuple[VariantDefinition, ...]
    cumulative: tuple[int, ...]
    group_id: str
    stickiness: Resolver | None  # None: userId, then sessionId, then random
    overrides: tuple[tuple[Resolver, frozenset[str], VariantDefinition], ...]

    @classmethod
    def build(
        cls, variants: Sequence[VariantDefinition], group_id: str, stickiness: str | None
    ) -> VariantSet | None:
        if not variants:
            return None
        weights = effective_weights([(v.weight, v.weight_type) for v in variants])
        overrides = tuple(
            (resolver(o.context_name), frozenset(o.values), v)
            for v in variants
            for o in v.overrides
        )
        sticky = None if stickiness in (None, "default") else stickiness
        return cls(
            tuple(variants),
            tuple(accumulate(weights)),
            group_id,
            None if sticky is None else resolver(sticky) if sticky != "random" else _random,
            overrides,
        )

    def select(self, ctx: Context) -> VariantDefinition | None:
        for get, values, variant in self.overrides:
            value = get(ctx)
            if value is not None and value in values:
                return variant
        total = self.cumulative[-1]
        if total <= 0:
            return None
        if self.stickiness is None:
            seed = ctx.user_id if ctx.user_id is not None else ctx.session_id
        else:
            seed = self.stickiness(ctx)
        if seed is None:
            target = random.randint(1, total)  # noqa: S311 - traffic splitting, not secrets
        else:
            target = normalized_hash(self.group_id, seed, total, VARIANT_SEED)
        return self.variants[bisect_left(self.cumulative, target)]


def _random(_: Context) -> str | None:
    return None
