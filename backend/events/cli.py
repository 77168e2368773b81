"""`tenantflow dead-letters ...`: list, show and replay the events handlers gave up on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:  # the CLI imports lazily: `tenantflow --help` stays fast
    from sqlalchemy.orm import Session

    from backend.events.deadletters import DeadLetterView

T = TypeVar("T")

dead_letters_app = typer.Typer(
    help="Dead letters: events a handler failed on after its last retry. Inspect, replay.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="Dead letter id (from `list`).")]


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _run(work: Callable[[Session], T]) -> T:
    """Run one use case in its own transaction: committed when it returns, else rolled back.

    Exit 1 for what the service refuses (not found, already replayed, tenant not active) or
    when a backing service is away; 2 for input it cannot use (a bad cursor)."""
    from kombu.exceptions import OperationalError as KombuOperationalError
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.orm import Session

    from backend.config import get_settings
    from backend.kit.db import make_engine
    from backend.kit.errors import Problem

    engine = make_engine(get_settings().database_url, pool_size=1)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            return work(session)
    except Problem as exc:
        _fail(exc.detail, 2 if exc.status == 422 else 1)
    except sa_exc.ProgrammingError as exc:
        _fail(f"the shared schema is not migrated; run `tenantflow migrate` ({exc.orig})")
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        _fail(f"PostgreSQL is not answering: {exc.orig}")
    except KombuOperationalError as exc:
        _fail(f"the message broker is not answering; nothing was sent ({exc})")
    finally:
        engine.dispose()


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _fail(f"'{value}' is not a dead letter id (see `tenantflow dead-letters list`)", 2)


def _as_dict(view: DeadLetterView) -> dict[str, object]:
    from backend.events.schemas import DeadLetterOut

    return DeadLetterOut.model_validate(view).model_dump(mode="json")


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"  # type: ignore[attr-defined]


def _show(view: DeadLetterView, as_json: bool) -> None:
    data = _as_dict(view)
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        if key != "envelope":
            out.print(f"{key:>12}: {value if value is not None else '-'}", highlight=False)
    out.print(f"{'envelope':>12}:", highlight=False)
    typer.echo(json.dumps(data["envelope"], indent=2))


@dead_letters_app.command("list")
def list_letters(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's (its slug).")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only events of this type (e.g. TaskCreated).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Show at most N, newest first.")
    ] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters, newest first. Exit 1 when --tenant names no tenant."""
    from backend.events import deadletters

    views, more = _run(
        lambda s: deadletters.list_dead_letters(
            s, limit=limit, tenant=tenant, event_type=event_type
        )
    )
    if as_json:
        typer.echo(json.dumps([_as_dict(v) for v in views]))
        return
    table = Table(
        Column("id", overflow="fold"),
        "tenant",
        "type",
        "handler",
        "attempts",
        "failed",
        "replayed",
        Column("error", overflow="ellipsis", max_width=60),
    )
    for v in views:
        first_line = v.error.splitlines()[0] if v.error else ""
        table.add_row(
            str(v.id),
            v.tenant,
            v.event_type,
            v.handler,
            str(v.attempts),
            _when(v.failed_at),
            _when(v.replayed_at),
            first_line,
        )
    # Piped output is not cut to 80 columns (rich's default without a terminal).
    (out if out.is_terminal else Console(soft_wrap=True, width=240)).print(table)
    suffix = f" (more: raise --limit above {limit})" if more else ""
    out.print(f"{len(views)} dead letter(s){suffix}", highlight=False)


@dead_letters_app.command("show")
def show(letter_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show one dead letter with its error and envelope. Exit 1 when there is no such id."""
    from backend.events import deadletters

    parsed = _parse_id(letter_id)
    _show(_run(lambda s: deadletters.get_dead_letter(s, parsed)), as_json)


@dead_letters_app.command("replay")
def replay(
    letter_id: IdArg,
    force: Annotated[
        bool, typer.Option("--force", help="Replay even if it was replayed before.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a dead letter's event to its handler again (the tenant's queue; a worker runs it).

    Safe to repeat: the handler's inbox skips an event it has handled. Exit 1 when there is no
    such id, it was replayed already (without --force) or its tenant is not active."""
    from backend.events import deadletters

    parsed = _parse_id(letter_id)
    view = _run(lambda s: deadletters.replay_dead_letter(s, parsed, force=force))
    if as_json:
        typer.echo(json.dumps(_as_dict(view)))
        return
    out.print(
        f"dead letter {view.id} replayed: event {view.event_id} ({view.event_type}) queued for "
        f"{view.handler} in tenant {view.tenant}",
        highlight=False,
    )
