"""The `tenantflow` command: tenants, operators, dead letters, flags, limits, migrate,
services, dev, api, worker, beat, mail."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from backend.config import get_settings
from backend.events.cli import dead_letters_app
from backend.flags.cli import flags_app
from backend.operators.cli import operators_app
from backend.ratelimit.cli import limits_app

app = typer.Typer(help="Tenantflow: multi-tenant task and workflow backend.", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Create, inspect, suspend, resume and delete tenants.", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")
mail_app = typer.Typer(
    help="Read the mail that the development SMTP sink (tenantflow dev) received.",
    no_args_is_help=True,
)
app.add_typer(mail_app, name="mail")
app.add_typer(operators_app, name="operators")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(flags_app, name="flags")
app.add_typer(limits_app, name="limits")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _engine():  # type: ignore[no-untyped-def]
    from backend.kit.db import make_engine

    return make_engine(get_settings().database_url, pool_size=2)


def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(
        get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2
    )


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def default_jobs() -> int:
    return min(4, (os.cpu_count() or 1) * 2)


# --- migrate -----------------------------------------------------------------------------------


@app.command()
def migrate(
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=64, help="Tenants migrated in parallel.")
    ] = default_jobs(),
    to: Annotated[str, typer.Option("--to", help="Tenant revision to reach.")] = "head",
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", "-t", help="Only these slugs (repeatable).")
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Visit every tenant, even those the registry says are at the target."
        ),
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show tenants per revision and exit.")
    ] = False,
) -> None:
    """Migrate the shared schema, then every tenant schema (parallel, resumable)."""
    from tenancy import migrate as m

    engine = _engine()
    if status:
        _print_status(engine)
        return
    from backend.migrate_progress import Reporter

    reporter = Reporter(out, sys.stdout.isatty())
    try:
        report = m.migrate_all(
            engine,
            jobs=jobs,
            target=to,
            tenants=tenant,
            every=every,
            redis=_redis(),
            on_start=reporter.start,
            on_result=reporter.result,
        )
    except m.MigrationLocked as exc:
        _fail(str(exc), 3)
    except ValueError as exc:
        _fail(str(exc), 2)
    finally:
        reporter.stop()
    out.print(
        f"shared schema at {report.shared_revision}; tenants: {report.pending} to migrate "
        f"to {report.target}, {len(report.outcomes) - len(report.failed)} done, "
        f"{len(report.failed)} failed"
    )
    if report.failed:
        table = Table("tenant", "error", title="Failed tenants (re-run to resume)")
        for outcome in report.failed:
            table.add_row(outcome.slug, outcome.error or "")
        err.print(table)
        raise typer.Exit(1)


def _print_status(engine) -> None:  # type: ignore[no-untyped-def]
    from tenancy import migrate as m

    shared_rev, tenant_head, rows = m.revision_status(engine)
    out.print(f"shared schema: {shared_rev or 'not migrated'} (head {m.head('shared')})")
    out.print(f"tenant head: {tenant_head}")
    table = Table("revision", "status", "tenants", "at head")
    for rev, state, count in rows:
        table.add_row(rev or "-", state, str(count), "yes" if rev == tenant_head else "no")
    out.print(table)


# --- tenants -----------------------------------------------------------------------------------


def _tenant_dict(record) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "id": str(record.id),
        "slug": record.slug,
        "name": record.name,
        "plan": record.plan,
        "status": record.status,
        "schema": record.schema_name,
        "schema_revision": record.schema_revision,
        "queue": record.queue,
        "created_at": record.created_at.isoformat(),
    }


def _show(record, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    data = _tenant_dict(record)
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        out.print(f"{key:>16}: {value}")


def _problem_exit(exc: Exception) -> None:
    from backend.kit.errors import Problem

    if isinstance(exc, Problem):
        _fail(exc.detail, 2 if exc.status in (404, 409, 422) else 1)
    raise exc


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    owner_email: Annotated[str, typer.Option(help="Email of the owner account.")],
    owner_password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="TENANTFLOW_OWNER_PASSWORD",
            help="Owner password (prompted when absent).",
        ),
    ],
    plan: Annotated[str, typer.Option(help="free, pro or enterprise.")] = "free",
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant with its schema and owner account."""
    from pydantic import ValidationError

    from backend.platform import service
    from backend.platform.schemas import TenantCreate

    try:
        data = TenantCreate(
            slug=slug,
            name=name,
            plan=plan,
            owner_email=owner_email,  # type: ignore[arg-type]
            owner_password=owner_password,
        )
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        _fail("; ".join(lines), 2)
    try:
        record = service.create_tenant(
            _engine(),
            _redis(),
            slug=data.slug,
            name=data.name,
            plan=data.plan,
            owner_email=str(data.owner_email),
            owner_password=data.owner_password,
        )
    except Exception as exc:
        _problem_exit(exc)
    _show(record, as_json)


@tenants_app.command("list")
def tenants_list(
    status: Annotated[str | None, typer.Option(help="active, suspended or deleting.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List every tenant."""
    from tenancy import registry

    engine = _engine()
    records = []
    after = None
    with engine.connect() as conn:
        while True:
            page = registry.list_tenants(conn, after=after, limit=500, status=status)
            records.extend(page)
            if len(page) < 500:
                break
            after = (page[-1].created_at, page[-1].id)
    if as_json:
        typer.echo(json.dumps([_tenant_dict(r) for r in records]))
        return
    table = Table("slug", "name", "plan", "status", "revision", "created")
    for r in records:
        table.add_row(
            r.slug,
            r.name,
            r.plan,
            r.status,
            r.schema_revision or "-",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)
    out.print(f"{len(records)} tenant(s)")


@tenants_app.command("show")
def tenants_show(slug: str, as_json: JsonOpt = False) -> None:
    """Show one tenant."""
    from backend.platform import service

    try:
        _show(service.get_tenant(_engine(), slug), as_json)
    except Exception as exc:
        _problem_exit(exc)


def _set_status(slug: str, status: str, as_json: bool) -> None:
    from backend.platform import service

    try:
        record = service.update_tenant(
            _engine(),
            _redis(),
            slug,
            {"status": status},
            stale_seconds=get_settings().registry_max_staleness_seconds,
        )
        _show(record, as_json)
    except Exception as exc:
        _problem_exit(exc)


@tenants_app.command("suspend")
def tenants_suspend(slug: str, as_json: JsonOpt = False) -> None:
    """Suspend a tenant: its users get 403 until it is resumed."""
    _set_status(slug, "suspended", as_json)


@tenants_app.command("resume")
def tenants_resume(slug: str, as_json: JsonOpt = False) -> None:
    """Resume a suspended tenant."""
    _set_status(slug, "active", as_json)


@tenants_app.command("delete")
def tenants_delete(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    now: Annotated[
        bool, typer.Option("--now", help="Drop the schema here instead of in a worker job.")
    ] = False,
) -> None:
    """Delete a tenant and all its data (schema dropped by a worker, or here with --now)."""
    from tenancy import provisioning

    if not yes:
        typer.confirm(f"Delete tenant '{slug}' and all its data?", abort=True)
    engine, redis = _engine(), _redis()
    stale_seconds = get_settings().registry_max_staleness_seconds
    if now:
        from tenancy.registry import InvalidationFailed

        try:
            record = provisioning.mark_deleting(engine, slug, redis=redis)
        except provisioning.TenantNotFound:
            _fail(f"no tenant '{slug}'", 2)
        except InvalidationFailed:
            _fail(
                f"tenant {slug} is marked deleting in PostgreSQL, but Redis could not be reached "
                f"to invalidate the registry cache: API processes may serve it for up to "
                f"{stale_seconds} seconds. Its schema was not dropped; run the command again "
                f"once Redis answers (or let the worker sweep drop it).",
                1,
            )
        provisioning.drop_tenant(engine, record.id, redis=redis)
        out.print(f"tenant {slug} deleted")
        return
    from backend.platform import service

    try:
        service.delete_tenant(engine, redis, slug, stale_seconds=stale_seconds)
    except Exception as exc:
        _problem_exit(exc)
    out.print(f"tenant {slug} is deleting; a worker drops its schema")


# --- mail --------------------------------------------------------------------------------------

MailDirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Sink directory (default: <TENANTFLOW_VAR_DIR>/mail)."),
]


def _mail_files(directory: Path | None) -> list[Path]:
    from backend.notifications.sink import list_messages

    return list_messages(directory or Path(get_settings().var_dir) / "mail")


def _mail_summary(number: int, path: Path) -> dict[str, object]:
    from backend.notifications.sink import read_message

    msg = read_message(path)
    return {
        "n": number,
        "date": str(msg.get("Date", "")),
        "to": str(msg.get("To", "")),
        "subject": str(msg.get("Subject", "")),
        "tenant": str(msg.get("X-Tenantflow-Tenant", "")),
        "template": str(msg.get("X-Tenantflow-Template", "")),
        "file": str(path),
    }


@mail_app.command("list")
def mail_list(directory: MailDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the received mails, oldest first, numbered for `tenantflow mail show N`."""
    rows = [_mail_summary(i, p) for i, p in enumerate(_mail_files(directory), start=1)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("#", "date", "to", "subject", "tenant")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("n", "date", "to", "subject", "tenant")))
    out.print(table)
    out.print(f"{len(rows)} mail(s)")


@mail_app.command("show")
def mail_show(
    number: Annotated[
        int | None, typer.Argument(min=1, help="Number from `mail list` (default: the newest).")
    ] = None,
    directory: MailDirOpt = None,
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part instead.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print the message as received.")] = False,
) -> None:
    """Show one received mail: its headers and plain-text part (or --html, --raw)."""
    from backend.notifications.sink import read_message

    files = _mail_files(directory)
    if not files:
        _fail("no mail received yet", 2)
    if number is not None and number > len(files):
        _fail(f"there are {len(files)} mail(s); no mail {number}", 2)
    path = files[(number or len(files)) - 1]
    if raw:
        typer.echo(path.read_bytes().decode("utf-8", "replace"))
        return
    msg = read_message(path)
    for header in ("Date", "From", "To", "Subject", "Message-ID", "X-Tenantflow-Tenant"):
        if header in msg:
            typer.echo(f"{header}: {msg[header]}")
    part = msg.get_body(preferencelist=("html",) if html else ("plain",))
    typer.echo("")
    typer.echo(part.get_content() if part is not None else "(no such part)")


# --- processes ---------------------------------------------------------------------------------


@app.command()
def services(
    database: Annotated[str, typer.Option(help="Database name to use or create.")] = "tenantflow",
) -> None:
    """Find or start PostgreSQL and Redis; print them as shell exports."""
    from backend import devservices

    try:
        found = devservices.ensure(get_settings().var_dir, database=database)
    except devservices.ServiceError as exc:
        _fail(str(exc))
    for note in found.notes:
        err.print(note)
    typer.echo(f"export TENANTFLOW_DATABASE_URL='{found.database_url}'")
    typer.echo(f"export TENANTFLOW_REDIS_URL='{found.redis_url}'")


@app.command()
def dev(
    host: str = "127.0.0.1",
    port: int = 8000,
    database: Annotated[str, typer.Option(help="Database name to use or create.")] = "tenantflow",
) -> None:
    """Everything for local work: services, migrations, demo tenant, API + worker + beat."""
    from backend.devserver import run_dev

    raise typer.Exit(run_dev(host, port, out, err, database=database))


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the HTTP API (uvicorn)."""
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "backend.main:create_app",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--proxy-headers",
            # Only these proxies' X-Forwarded-For is believed (the client address feeds the
            # login lockout and the audit trail); never "*" unless every path to the API
            # passes through a proxy that overwrites the header.
            "--forwarded-allow-ips",
            get_settings().forwarded_allow_ips,
        ],
    )


@app.command()
def worker(
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues (default: all).")
    ] = None,
    concurrency: int = 2,
) -> None:
    """Run a Celery worker (all queues by default)."""
    from backend.devserver import worker_argv

    argv = worker_argv(queues.split(",") if queues else None, concurrency, "worker")
    os.execvp(argv[0], argv)


@app.command()
def relay(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every batch.")] = False,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            "-I",
            help="Also import this module (it registers event handlers); repeatable. The "
            "workers need the same modules (celery -I).",
        ),
    ] = None,
) -> None:
    """Move committed domain events from the tenants' outboxes to their queues and live feeds.

    Runs until interrupted; survives PostgreSQL, Redis and broker outages. Several may run."""
    import importlib
    import logging
    import signal
    import threading

    from backend.events.relay import Relay
    from backend.workers.celery_app import celery_app

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for module in include or []:
        importlib.import_module(module)
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine = _engine()
    runner = Relay(settings, engine, _redis(), celery_app)
    err.print(f"relay: listening for events (sweep every {settings.relay_sweep_seconds:g} s)")
    try:
        runner.run(stop)
    finally:
        engine.dispose()
    s = runner.stats
    err.print(f"relay: stopped; {s.published} events, {s.messages} messages, {s.errors} errors")


projections_app = typer.Typer(help="Read projections kept by event handlers.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")


@projections_app.command("rebuild")
def projections_rebuild(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant's slug (default: every tenant).")
    ] = None,
) -> None:
    """Recompute the task-counts projection from the tasks, and mark it built: from then on
    the stats read their counts by status from it."""
    from sqlalchemy.orm import Session

    from backend.analytics import projection
    from tenancy import registry
    from tenancy.db import bound_engine

    engine = _engine()
    try:
        with engine.connect() as conn:
            if tenant is not None:
                found = registry.get_by_slug(conn, tenant)
                if found is None:
                    _fail(f"no tenant '{tenant}'")
                targets = [found] if found is not None else []
            else:
                targets = registry.list_tenants(conn, limit=1_000_000, status="active")
        for i, record in enumerate(targets, 1):
            with Session(bound_engine(engine, record)) as session:
                count = projection.rebuild(session)
                session.commit()
            err.print(f"[{i}/{len(targets)}] {record.slug}: {count} projects")
    finally:
        engine.dispose()
    out.print(f"rebuilt {len(targets)} tenant(s)")


@app.command()
def beat() -> None:
    """Run Celery beat (periodic platform jobs)."""
    from backend.devserver import beat_argv

    argv = beat_argv()
    os.execvp(argv[0], argv)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
