"""Constraint operators compiled to closures: values are parsed once, when flags load.

Semantics follow Unleash's engines: a missing context value fails every operator except
NOT_IN (which it satisfies); `inverted` negates the operator's result, so an inverted
operator is satisfied by a missing value; an unparsable context value fails the operator."""

from __future__ import annotations

import operator as op
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.flags import values
from backend.flags.context import Context, resolver
from backend.flags.regex import compile_pattern

if TYPE_CHECKING:
    from backend.flags.model import Constraint

Check = Callable[[Context], bool]
Compare = Callable[[Any, Any], bool]

_ORDER: dict[str, Compare] = {
    "NUM_EQ": op.eq,
    "NUM_GT": op.gt,
    "NUM_GTE": op.ge,
    "NUM_LT": op.lt,
    "NUM_LTE": op.le,
    "DATE_AFTER": op.gt,
    "DATE_BEFORE": op.lt,
    "SEMVER_EQ": op.eq,
    "SEMVER_GT": op.gt,
    "SEMVER_LT": op.lt,
}
OPERATORS = frozenset(
    {"IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "REGEX", *_ORDER}
)


def never(_: Context) -> bool:
    return False


def compile_constraint(constraint: Constraint) -> Check:
    """The check for one constraint; ValueError when it cannot be evaluated (unknown
    operator, unparsable value) — a lenient loader turns that into `never`."""
    check = _operator(constraint)
    if not constraint.inverted:
        return check
    return lambda ctx: not check(ctx)


def compile_lenient(constraint: Constraint) -> Check:
    """Like `compile_constraint`, but a constraint that cannot be evaluated is never
    satisfied, inverted or not (Unleash turns such a strategy off)."""
    try:
        return compile_constraint(constraint)
    except ValueError:
        return never


def _operator(c: Constraint) -> Check:
    name = c.operator
    get = resolver(c.context_name)
    if name == "IN":
        allowed = frozenset(c.values)
        return lambda ctx: (v := get(ctx)) is not None and v in allowed
    if name == "NOT_IN":
        refused = frozenset(c.values)
        return lambda ctx: (v := get(ctx)) is None or v not in refused
    if name.startswith("STR_") and name in OPERATORS:
        return _string(name, get, tuple(c.values), c.case_insensitive)
    if name == "REGEX":
        pattern = compile_pattern(_single(c), c.case_insensitive)
        return lambda ctx: (v := get(ctx)) is not None and pattern.search(v) is not None
    compare = _ORDER.get(name)
    if compare is None:
        known = ", ".join(sorted(OPERATORS))
        raise ValueError(f"unknown constraint operator {name!r}; expected one of {known}")
    if name.startswith("NUM_"):
        return _ordered(get, compare, _parsed(c, values.number, "a number"), values.number)
    if name.startswith("SEMVER_"):
        target = _parsed(c, values.semver_key, "a semantic version (semver 2.0)")
        return _ordered(get, compare, target, values.context_semver)
    target = _parsed(c, values.date, "an ISO 8601 date-time")
    if c.context_name == "currentTime":  # the clock when the caller did not say

        def clock(ctx: Context) -> bool:
            return compare(ctx.current_time or datetime.now(UTC), target)

        return clock
    return _ordered(get, compare, target, values.context_date)


def _single(c: Constraint) -> str:
    if c.value is None:
        raise ValueError(f"operator {c.operator} needs a `value`")
    return c.value


def _parsed(c: Constraint, parse: Callable[[str], Any], what: str) -> Any:
    parsed = parse(_single(c))
    if parsed is None:
        raise ValueError(f"operator {c.operator} needs {what}, not {c.value!r}")
    return parsed


def _ordered(
    get: Callable[[Context], str | None],
    compare: Compare,
    target: Any,
    parse: Callable[[str], Any],
) -> Check:
    def check(ctx: Context) -> bool:
        raw = get(ctx)
        if raw is None:
            return False
        value = parse(raw)
        return value is not None and compare(value, target)

    return check


def _string(
    name: str, get: Callable[[Context], str | None], wanted: tuple[str, ...], fold: bool
) -> Check:
    if fold:
        wanted = tuple(w.lower() for w in wanted)

    def text(ctx: Context) -> str | None:
        v = get(ctx)
        return v.lower() if fold and v is not None else v

    if name == "STR_STARTS_WITH":
        return lambda ctx: (v := text(ctx)) is not None and v.startswith(wanted)
    if name == "STR_ENDS_WITH":
        return lambda ctx: (v := text(ctx)) is not None and v.endswith(wanted)
    return lambda ctx: (v := text(ctx)) is not None and any(w in v for w in wanted)
