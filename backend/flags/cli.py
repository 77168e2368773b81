"""`tenantflow flags ...`: check the flag engine against Unleash specification files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

flags_app = typer.Typer(help="Feature flags: the evaluation engine.", no_args_is_help=True)


@flags_app.command("spec")
def spec(
    files: Annotated[list[Path], typer.Argument(help="Unleash client-specification JSON files.")],
) -> None:
    """Run client-specification files: one line per failing case, then `N passed, M failed`.

    Exit status: 0 when every case passes, 1 when some fail, 2 when a file is unreadable or
    malformed (then nothing runs)."""
    from backend.flags.spec import SpecError, load_spec, run_spec

    try:
        loaded = [load_spec(path) for path in files]
    except SpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    passed = failed = 0
    for spec_file in loaded:
        report = run_spec(spec_file)
        for failure in report.failures:
            typer.echo(str(failure))
        passed += report.passed
        failed += report.failed
    typer.echo(f"{passed} passed, {failed} failed")
    raise typer.Exit(0 if failed == 0 else 1)
