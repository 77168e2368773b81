"""Run Unleash client-specification files against the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from backend.flags.context import Context
from backend.flags.engine import Engine
from backend.flags.model import FeatureState, parse_state


class SpecError(Exception):
    """A specification file that cannot be read or does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class Failure:
    file: str
    description: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.description}: expected {_show(self.expected)}, "
            f"got {_show(self.got)}"
        )


@dataclass(slots=True)
class SpecReport:
    file: str
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


class _Case(BaseModel):
    model_config = ConfigDict(extra="allow", alias_generator=to_camel)
    description: str
    context: dict[str, Any] = {}
    toggle_name: str
    expected_result: Any


class _Spec(BaseModel):
    model_config = ConfigDict(extra="allow", alias_generator=to_camel)
    state: dict[str, Any]
    tests: list[_Case] = []
    variant_tests: list[_Case] = []


@dataclass(frozen=True, slots=True)
class SpecFile:
    """A parsed specification file, ready to run."""

    name: str
    state: FeatureState
    tests: list[_Case]
    variant_tests: list[_Case]


def load_spec(path: Path) -> SpecFile:
    """Read and validate one file; SpecError says why it cannot be used."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: not valid JSON: {exc}") from None
    try:
        spec = _Spec.model_validate(raw)
        state = parse_state(spec.state)
        for case in [*spec.tests, *spec.variant_tests]:
            Context.from_dict(case.context)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise SpecError(f"{path}: not a specification file: {problems}") from None
    except ValueError as exc:
        raise SpecError(f"{path}: bad test context: {exc}") from None
    return SpecFile(str(path), state, spec.tests, spec.variant_tests)


def run_spec(spec: SpecFile) -> SpecReport:
    """Evaluate every case of a loaded file."""
    report = SpecReport(spec.name)
    for failure in _failures(spec, report):
        report.failures.append(failure)
    return report


def run_spec_file(path: Path) -> SpecReport:
    """Load and run one file (SpecError when it is unreadable or malformed)."""
    return run_spec(load_spec(path))


def _failures(spec: SpecFile, report: SpecReport) -> Iterator[Failure]:
    engine = Engine.from_state(spec.state)
    for case in spec.tests:
        got = engine.is_enabled(case.toggle_name, Context.from_dict(case.context))
        if got == case.expected_result:
            report.passed += 1
        else:
            yield Failure(spec.name, case.description, case.expected_result, got)
    for case in spec.variant_tests:
        variant = engine.variant(case.toggle_name, Context.from_dict(case.context)).to_dict()
        if _variant_matches(case.expected_result, variant):
            report.passed += 1
        else:
            yield Failure(spec.name, case.description, case.expected_result, variant)


def _variant_matches(expected: Any, got: Mapping[str, Any]) -> bool:
    if not isinstance(expected, Mapping):
        return False
    return (
        expected.get("name") == got["name"]
        and expected.get("enabled") == got["enabled"]
        and expected.get("payload") == got.get("payload")
        # Older files predate feature_enabled: compare it only where the file states it.
        and expected.get("feature_enabled", got["feature_enabled"]) == got["feature_enabled"]
    )


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
