"""Run Unleash client-specification files against the engine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, strict=True)


class _CaseBase(_Strict):
    description: str
    context: dict[str, Any] = {}
    toggle_name: str


class _Case(_CaseBase):
    expected_result: bool


class _ExpectedVariant(_Strict):
    name: str
    enabled: bool
    payload: dict[str, Any] | None = None
    # Older files predate feature_enabled: it is compared only where the file states it.
    feature_enabled: bool | None = Field(None, alias="feature_enabled")


class _VariantCase(_CaseBase):
    expected_result: _ExpectedVariant


class _Spec(_Strict):
    state: dict[str, Any]
    tests: list[_Case] = []
    variant_tests: list[_VariantCase] = []


@dataclass(frozen=True, slots=True)
class SpecFile:
    """A parsed specification file, ready to run."""

    name: str
    state: FeatureState
    tests: list[_Case]
    variant_tests: list[_VariantCase]


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
        cases: list[_CaseBase] = [*spec.tests, *spec.variant_tests]
        for case in cases:
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
    """Evaluate every case of a loaded file: the failures, and how many passed."""
    engine = Engine.from_state(spec.state)
    report = SpecReport(spec.name)
    for case in spec.tests:
        enabled = engine.is_enabled(case.toggle_name, Context.from_dict(case.context))
        _record(report, case.description, case.expected_result, enabled)
    for variant_case in spec.variant_tests:
        context = Context.from_dict(variant_case.context)
        got = engine.variant(variant_case.toggle_name, context).to_dict()
        expected = variant_case.expected_result.model_dump(by_alias=True, exclude_none=True)
        if variant_case.expected_result.feature_enabled is None:
            del got["feature_enabled"]
        _record(report, variant_case.description, expected, got)
    return report


def run_spec_file(path: Path) -> SpecReport:
    """Load and run one file (SpecError when it is unreadable or malformed)."""
    return run_spec(load_spec(path))


def _record(report: SpecReport, description: str, expected: Any, got: Any) -> None:
    if expected == got:
        report.passed += 1
    else:
        report.failures.append(Failure(report.file, description, expected, got))


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
