"""The flag engine against Unleash's client specification, in-process and via the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app as cli_app
from backend.flags.model import parse_state
from backend.flags.spec import load_spec, run_spec, run_spec_file

SPEC_DIR = Path(__file__).parent / "conformance" / "unleash"
SPEC_FILES = sorted(SPEC_DIR.glob("*.json"))


def _case_count(path: Path) -> int:
    data = json.loads(path.read_text(encoding="utf-8"))
    return len(data.get("tests", [])) + len(data.get("variantTests", []))


def test_the_specification_files_are_all_here() -> None:
    assert len(SPEC_FILES) >= 16
    assert (SPEC_DIR / "LICENSE").is_file() and (SPEC_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_specification_file_passes(path: Path) -> None:
    report = run_spec_file(path)
    assert not report.failures, "\n".join(str(f) for f in report.failures)
    assert report.passed == _case_count(path) > 0


def test_cli_runs_every_file_and_passes() -> None:
    result = CliRunner().invoke(cli_app, ["flags", "spec", *map(str, SPEC_FILES)])
    total = sum(_case_count(p) for p in SPEC_FILES)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{total} passed, 0 failed"]


def test_cli_reports_a_failing_case_and_exits_1(tmp_path: Path) -> None:
    spec = json.loads((SPEC_DIR / "01-simple-examples.json").read_text(encoding="utf-8"))
    wrong = next(t for t in spec["tests"] if t["toggleName"] == "Feature.B")
    wrong["expectedResult"] = True  # Feature.B is disabled: this expectation is wrong
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(spec), encoding="utf-8")

    result = CliRunner().invoke(cli_app, ["flags", "spec", str(path)])

    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: {wrong['description']}: expected true, got false"
    assert lines[-1] == f"{len(spec['tests']) - 1} passed, 1 failed"
    assert len(lines) == 2


def test_cli_reports_a_failing_variant_case(tmp_path: Path) -> None:
    spec = json.loads((SPEC_DIR / "08-variants.json").read_text(encoding="utf-8"))
    case = spec["variantTests"][0]
    case["expectedResult"]["name"] = "variant9"
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(spec), encoding="utf-8")

    result = CliRunner().invoke(cli_app, ["flags", "spec", str(path)])

    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}: {case['description']}: expected {{")
    assert '"name": "variant9"' in first and '"name": "variant1"' in first
    assert result.stdout.splitlines()[-1].endswith(" passed, 1 failed")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"tests": []}),  # no state
        json.dumps({"state": {"features": "nope"}, "tests": []}),
        json.dumps({"state": {"features": []}, "tests": [{"description": "no toggle"}]}),
        json.dumps({"state": {"features": [{"name": "x", "enabled": "sometimes"}]}}),
        json.dumps(
            {
                "state": {"features": []},
                "tests": [{"description": "d", "toggleName": "x", "expectedResult": "yes"}],
            }
        ),
        json.dumps(
            {
                "state": {"features": []},
                "variantTests": [
                    {"description": "d", "toggleName": "x", "expectedResult": {"enabled": False}}
                ],
            }
        ),
        json.dumps(
            {
                "state": {"features": []},
                "tests": [
                    {
                        "description": "d",
                        "toggleName": "x",
                        "context": {"currentTime": "noon"},
                        "expectedResult": False,
                    }
                ],
            }
        ),
    ],
    ids=[
        "bad-json",
        "no-state",
        "features-not-a-list",
        "case-without-toggle",
        "bad-feature",
        "expected-not-a-boolean",
        "variant-without-name",
        "bad-context-time",
    ],
)
def test_cli_exits_2_on_a_malformed_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    good = str(SPEC_DIR / "01-simple-examples.json")

    result = CliRunner().invoke(cli_app, ["flags", "spec", good, str(path)])

    assert result.exit_code == 2, result.output
    assert str(path) in result.stderr and "error:" in result.stderr
    assert "passed" not in result.stdout  # nothing runs when a file is unusable


def test_cli_exits_2_on_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["flags", "spec", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_the_installed_command_line_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "flags", "spec", *map(str, SPEC_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(" passed, 0 failed")


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_definitions_survive_a_dump_and_reload(path: Path) -> None:
    # What a storage layer does: keep model_dump(by_alias=True, exclude_none=True), reload.
    spec = load_spec(path)
    dumped = json.loads(json.dumps(spec.state.model_dump(by_alias=True, exclude_none=True)))
    reloaded = replace(spec, state=parse_state(dumped))
    assert reloaded.state == spec.state
    report = run_spec(reloaded)
    assert not report.failures, "\n".join(str(f) for f in report.failures)
