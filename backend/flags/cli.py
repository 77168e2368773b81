"""`tenantflow flags ...`: operators' flag definitions (what PUT/GET/DELETE /platform/v1/flags
do, through the same service), the kill switch, the audit history, and the Unleash
client-specification runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backend.kit.cli import actor, fail, invalid, out, print_table, read_json, run, table

if TYPE_CHECKING:  # the CLI imports lazily: `tenantflow --help` stays fast
    import redis as redis_sync
    from sqlalchemy import Engine

flags_app = typer.Typer(
    help="Feature flags: definitions, the kill switch, history; the engine's conformance. "
    "Changes are recorded in the flag's history as made by cli:<your login name>.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The flag's name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _summary(flag: dict[str, Any], what: str) -> None:
    state = "on" if flag["enabled"] else "off"
    strategies = len(flag.get("strategies") or [])
    out.print(f"flag {flag['name']} {what}: {state}, {strategies} strategy(ies)", highlight=False)


@flags_app.command("list")
def list_flags(as_json: JsonOpt = False) -> None:
    """List every flag: on or off, its strategies, whether tenants may override it."""
    from backend.flags import service
    from backend.flags.schemas import flag_out

    rows, version = run(
        lambda engine, _: (service.list_flags(engine), service.latest_version(engine))
    )
    flags = [flag_out(r) for r in rows]
    if as_json:
        typer.echo(json.dumps(flags))
        return
    listing = table("name", "enabled", "strategies", "overridable", "updated", "by")
    for f in flags:
        listing.add_row(
            f["name"],
            "on" if f["enabled"] else "off",
            str(len(f.get("strategies") or [])),
            "yes" if f["tenantOverridable"] else "no",
            _when(f["updatedAt"]),
            f["updatedBy"],
        )
    print_table(listing)
    out.print(f"{len(flags)} flag(s); flags version {version}", highlight=False)


@flags_app.command("show")
def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Print a flag's definition as stored, as JSON.

    Unleash feature JSON, with tenantOverridable, updatedAt and updatedBy beside it. Exit 1
    when there is no such flag."""
    from backend.flags import service
    from backend.flags.schemas import flag_out

    flag = flag_out(run(lambda engine, _: service.get_flag(engine, name)))
    typer.echo(json.dumps(flag) if as_json else json.dumps(flag, indent=2))


@flags_app.command("put")
def put(
    name: NameArg,
    source: Annotated[
        str,
        typer.Argument(metavar="FILE", help="An Unleash feature JSON file, or - for stdin."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a flag from Unleash feature JSON (a file, or - for stdin).

    Validated as PUT /platform/v1/flags/NAME validates it. The body's "name" must be NAME;
    "tenantOverridable": true lets tenant admins turn it on or off for their tenant. Exit 2
    for a definition that is refused (the message names the problem), 1 when PostgreSQL is
    away. Every process has the change within a second."""
    from pydantic import ValidationError

    from backend.flags import service
    from backend.flags.schemas import FeatureIn, flag_out, tenant_overridable

    try:
        feature = FeatureIn.model_validate(read_json(source))
    except ValidationError as exc:
        invalid(exc)
    if feature.name != name:
        fail(f"the definition's name '{feature.name}' is not '{name}'", 2)

    def work(engine: Engine, redis: redis_sync.Redis) -> tuple[dict[str, Any], bool]:
        overridable = tenant_overridable(feature)
        return service.put_flag(engine, redis, feature, overridable=overridable, actor=actor())

    row, created = run(work)
    flag = flag_out(row)
    if as_json:
        typer.echo(json.dumps(flag))
    else:
        _summary(flag, "created" if created else "replaced")


def _switch(name: str, enabled: bool, as_json: bool) -> None:
    from backend.flags import service
    from backend.flags.model import LENIENT
    from backend.flags.schemas import FeatureIn, flag_out

    def work(engine: Engine, redis: redis_sync.Redis) -> tuple[dict[str, Any], bool]:
        row = service.get_flag(engine, name)
        if row["definition"]["enabled"] is enabled:
            return row, False
        # Switching off validates leniently: a definition that a later, stricter release would
        # refuse must not stand in the way of the kill switch. Switching on validates as a PUT.
        feature = FeatureIn.model_validate(
            {**row["definition"], "enabled": enabled}, context=None if enabled else LENIENT
        )
        changed, _ = service.put_flag(
            engine, redis, feature, overridable=row["tenant_overridable"], actor=actor()
        )
        return changed, True

    row, changed = run(work)
    flag = flag_out(row)
    if as_json:
        typer.echo(json.dumps(flag))
    elif changed:
        _summary(flag, "switched")
    else:
        out.print(f"flag {name} is already {'on' if enabled else 'off'}; nothing changed")


@flags_app.command("enable")
def enable(name: NameArg, as_json: JsonOpt = False) -> None:
    """Switch a flag on: its strategies decide again. Exit 1 when there is no such flag."""
    _switch(name, True, as_json)


@flags_app.command("disable")
def disable(name: NameArg, as_json: JsonOpt = False) -> None:
    """The kill switch: the flag is off for everyone, on every process within a second.

    Its strategies are kept; `enable` brings them back. Exit 1 when there is no such flag."""
    _switch(name, False, as_json)


@flags_app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a flag: it evaluates as off everywhere; its history is kept.

    Exit 1 when there is no such flag."""
    from backend.flags import service

    if not yes:
        typer.confirm(f"Delete flag '{name}'?", abort=True)
    run(lambda engine, redis: service.delete_flag(engine, redis, name, actor=actor()))
    out.print(f"flag {name} deleted", highlight=False)


def _state(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "-"
    enabled = doc.get("definition", doc).get("enabled")
    return "on" if enabled else "off"


@flags_app.command("history")
def history(
    name: NameArg,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="Show at most N, newest first.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Changes of a flag and of tenants' overrides of it, newest first: who, when, what.

    Exit 1 when no such flag ever existed."""
    from backend.flags import service
    from backend.flags.schemas import AuditEntry

    rows = run(lambda engine, _: service.history(engine, ("flag", "override"), name, limit))
    if not rows:
        fail(f"no flag '{name}' ever existed")
    entries = [AuditEntry.model_validate(r) for r in rows]
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in entries]))
        return
    listing = table("at", "version", "kind", "action", "actor", "tenant", "before", "after")
    for e in entries:
        listing.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            str(e.version),
            e.kind,
            e.action,
            e.actor,
            str(e.tenant_id) if e.tenant_id else "-",
            _state(e.before),
            _state(e.after),
        )
    print_table(listing)


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
