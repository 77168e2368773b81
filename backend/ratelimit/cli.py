"""`tenantflow limits ...`: plans and per-tenant limit overrides (what /platform/v1/plans and
/platform/v1/tenants/{slug}/limits do, through the same service)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backend.kit.cli import actor, fail, invalid, out, print_table, read_json, run, table

if TYPE_CHECKING:  # the CLI imports lazily: `tenantflow --help` stays fast
    from backend.ratelimit.schemas import LimitAuditEntry, LimitsOut, PlanOut

limits_app = typer.Typer(
    help="Rate limits: the plans' limits and tenants' overrides, and their history. Every API "
    "process applies a change within a second; it is recorded as made by cli:<your login name>.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PlanArg = Annotated[str, typer.Argument(metavar="NAME", help="free, pro or enterprise.")]
SlugArg = Annotated[str, typer.Argument(metavar="SLUG", help="The tenant's slug.")]
#: The overridable limits, as options of `limits set` name them.
LIMIT_OPTIONS = {
    "requests-per-minute": "requests_per_minute",
    "user-requests-per-minute": "user_requests_per_minute",
    "write-requests-per-minute": "write_requests_per_minute",
    "auth-requests-per-minute": "auth_requests_per_minute",
    "concurrent-requests": "concurrent_requests",
}


def _plan_dict(plan: PlanOut) -> dict[str, Any]:
    return {"name": plan.name, **plan.model_dump(mode="json")}


def _show_plan(plan: PlanOut, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_plan_dict(plan)))
        return
    for key, value in _plan_dict(plan).items():
        shown = ", ".join(value) if isinstance(value, list) else value
        out.print(f"{key:>26}: {'-' if shown in (None, '') else shown}", highlight=False)


@limits_app.command("plans")
def plans(as_json: JsonOpt = False) -> None:
    """List the plans and their limits (per minute; concurrent: requests in flight)."""
    from backend.ratelimit import service

    found = run(lambda engine, _: service.list_plans(engine))
    if as_json:
        typer.echo(json.dumps([_plan_dict(p) for p in found]))
        return
    listing = table(
        "plan", "tenant", "user", "write", "auth", "concurrent", "shadow", "fail closed"
    )
    for p in found:
        listing.add_row(
            p.name,
            str(p.requests_per_minute),
            str(p.user_requests_per_minute),
            str(p.write_requests_per_minute),
            str(p.auth_requests_per_minute),
            str(p.concurrent_requests or "no limit"),
            ", ".join(p.shadow) or "-",
            ", ".join(p.fail_closed) or "-",
        )
    print_table(listing)


@limits_app.command("plan")
def plan(name: PlanArg, as_json: JsonOpt = False) -> None:
    """Show one plan's limits. Exit 1 when there is no such plan."""
    from backend.ratelimit import service

    _show_plan(run(lambda engine, _: service.get_plan(engine, name)), as_json)


@limits_app.command("set-plan")
def set_plan(
    name: PlanArg,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="The plan as JSON (the body of PUT /platform/v1/plans/NAME), or - for stdin.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Replace a plan's limits with a JSON body (a file, or - for stdin).

    The body of PUT /platform/v1/plans/NAME: the four per-minute limits are required;
    concurrent_requests, shadow and fail_closed take their defaults when left out (see
    docs/ratelimit.md). Exit 1 when there is no such plan, 2 for a body that is refused."""
    from pydantic import ValidationError

    from backend.ratelimit import service
    from backend.ratelimit.schemas import PlanIn

    try:
        data = PlanIn.model_validate(read_json(source))
    except ValidationError as exc:
        invalid(exc)
    _show_plan(
        run(lambda engine, redis: service.put_plan(engine, redis, name, data, actor=actor())),
        as_json,
    )


HistoryLimitOpt = Annotated[
    int, typer.Option("--limit", min=1, max=500, help="Show at most N, newest first.")
]


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return "-" if value is None else str(value)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """`field: old -> new` for each value that differs (``-``: none, or no overrides)."""
    old, new = before or {}, after or {}
    fields = sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))
    return "; ".join(f"{f}: {_shown(old.get(f))} -> {_shown(new.get(f))}" for f in fields) or "-"


def _show_history(entries: list[LimitAuditEntry], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in entries]))
        return
    listing = table("at", "actor", "changed")
    for e in entries:
        listing.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, _changed(e.before, e.after))
    print_table(listing)


@limits_app.command("plan-history")
def plan_history(name: PlanArg, limit: HistoryLimitOpt = 100, as_json: JsonOpt = False) -> None:
    """Changes of a plan's limits, newest first: who, when, what changed.

    Exit 1 when there is no such plan."""
    from backend.ratelimit import service

    _show_history(run(lambda engine, _: service.plan_history(engine, name, limit)), as_json)


def _show_limits(limits: LimitsOut, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(limits.model_dump(mode="json")))
        return
    out.print(f"tenant {limits.tenant}, plan {limits.plan}", highlight=False)
    listing = table("limit", "override", "effective")
    for option, field in LIMIT_OPTIONS.items():
        override = getattr(limits.overrides, field)
        effective = getattr(limits.effective, field)
        listing.add_row(
            option,
            "-" if override is None else str(override),
            "no limit" if effective is None else str(effective),
        )
    print_table(listing)


@limits_app.command("show")
def show(slug: SlugArg, as_json: JsonOpt = False) -> None:
    """Show a tenant's overrides and the limits in effect.

    Exit 1 when there is no such tenant."""
    from backend.ratelimit import service

    _show_limits(run(lambda engine, _: service.get_limits(engine, slug)), as_json)


LimitOpt = Annotated[int | None, typer.Option(help="Override (a positive number).")]


@limits_app.command("set")
def set_limits(
    slug: SlugArg,
    requests_per_minute: LimitOpt = None,
    user_requests_per_minute: LimitOpt = None,
    write_requests_per_minute: LimitOpt = None,
    auth_requests_per_minute: LimitOpt = None,
    concurrent_requests: LimitOpt = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(
            "--clear",
            metavar="LIMIT",
            help="Drop this override: the plan's value applies again (repeatable; e.g. "
            "--clear requests-per-minute).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Override some of a tenant's plan limits; the limits not named are kept as they are.

    Exit 1 when there is no such tenant, 2 for a value that is refused."""
    from pydantic import ValidationError

    from backend.ratelimit import service
    from backend.ratelimit.schemas import LimitsIn

    given = {
        "requests_per_minute": requests_per_minute,
        "user_requests_per_minute": user_requests_per_minute,
        "write_requests_per_minute": write_requests_per_minute,
        "auth_requests_per_minute": auth_requests_per_minute,
        "concurrent_requests": concurrent_requests,
    }
    # Only what was named goes in the body: the service keeps a field left out, and clears a
    # field given as null (LimitsIn's fields set), as PUT .../limits does.
    body: dict[str, int | None] = {f: v for f, v in given.items() if v is not None}
    for option in clear or []:
        name = option.removeprefix("--").replace("_", "-")
        field = LIMIT_OPTIONS.get(name)
        if field is None:
            fail(f"--clear {option}: not a limit; one of {', '.join(LIMIT_OPTIONS)}", 2)
        if field in body:
            fail(f"--{name} is both set and cleared", 2)
        body[field] = None
    if not body:
        fail("nothing to change: give a limit to set or --clear LIMIT", 2)
    try:
        data = LimitsIn.model_validate(body)
    except ValidationError as exc:  # named as the options are
        lines = [f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()]
        fail("; ".join(lines), 2)
    _show_limits(
        run(lambda engine, redis: service.put_limits(engine, redis, slug, data, actor=actor())),
        as_json,
    )


@limits_app.command("history")
def history(slug: SlugArg, limit: HistoryLimitOpt = 100, as_json: JsonOpt = False) -> None:
    """Changes of a tenant's overrides, newest first: who, when, what changed.

    Exit 1 when there is no such tenant."""
    from backend.ratelimit import service

    _show_history(run(lambda engine, _: service.tenant_history(engine, slug, limit)), as_json)
