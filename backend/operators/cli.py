"""`tenantflow operators ...`: operator accounts and their API tokens."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:  # the CLI imports lazily: `tenantflow --help` stays fast
    from backend.operators.models import Operator, OperatorToken
    from backend.operators.service import OperatorService

T = TypeVar("T")

operators_app = typer.Typer(
    help="Platform operators: accounts that sign in to /platform/v1, and their API tokens.",
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="Operator API tokens (tfo_...): create, list, revoke.", no_args_is_help=True
)
operators_app.add_typer(token_app, name="token")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EmailOpt = Annotated[str, typer.Option("--email", help="The operator's email.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _run(work: Callable[[OperatorService], Awaitable[T]]) -> T:
    """Run one use case in its own transaction: committed when it returns, else rolled back."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.ext.asyncio import AsyncSession

    from backend.config import get_settings
    from backend.kit.db import make_async_engine
    from backend.kit.errors import Problem
    from backend.operators.repository import OperatorRepository
    from backend.operators.service import OperatorService

    async def go() -> T:
        engine = make_async_engine(get_settings().database_url, pool_size=1)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                result = await work(OperatorService(OperatorRepository(session)))
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except Problem as exc:
        _fail(exc.detail, 2 if exc.status in (404, 409, 422) else 1)
    except sa_exc.ProgrammingError as exc:
        _fail(f"the shared schema is not migrated; run `tenantflow migrate` ({exc.orig})")
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        _fail(f"PostgreSQL is not answering: {exc.orig}")


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"  # type: ignore[attr-defined]


def _operator_dict(op: Operator) -> dict[str, object]:
    return {
        "id": str(op.id),
        "email": op.email,
        "name": op.name,
        "is_active": op.is_active,
        "created_at": op.created_at.isoformat(),
        "last_login_at": op.last_login_at.isoformat() if op.last_login_at else None,
    }


def _token_dict(token: OperatorToken, email: str) -> dict[str, object]:
    def iso(value: object) -> str | None:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    return {
        "id": str(token.id),
        "operator": email,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


def _table(*headers: str) -> Table:
    # Ids and emails fold instead of being cut: a listing must be copyable and greppable.
    whole = {"id", "email", "operator", "prefix"}
    return Table(*(Column(h, overflow="fold" if h in whole else "ellipsis") for h in headers))


def _print_table(table: Table) -> None:
    # Piped output is not cut to 80 columns (rich's default without a terminal).
    (out if out.is_terminal else Console(soft_wrap=True, width=240)).print(table)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@operators_app.command("create")
def create(
    email: EmailOpt,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from the first line of stdin (no prompt)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an operator. The password (10-128 characters) is prompted for, never echoed."""
    from pydantic import ValidationError

    from backend.operators.schemas import OperatorCreate

    password = _read_password(password_stdin)
    try:
        data = OperatorCreate(email=email, name=name, password=password)  # type: ignore[arg-type]
    except ValidationError as exc:
        # The message of a password error never includes the input itself.
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        _fail("; ".join(lines), 2)
    operator = _run(lambda s: s.create(str(data.email), data.password, data.name))
    if as_json:
        typer.echo(json.dumps(_operator_dict(operator)))
    else:
        out.print(f"operator {operator.email} created (id {operator.id})", highlight=False)


@operators_app.command("list")
def list_operators(as_json: JsonOpt = False) -> None:
    """List every operator."""
    operators = _run(lambda s: s.list_all())
    if as_json:
        typer.echo(json.dumps([_operator_dict(o) for o in operators]))
        return
    table = _table("email", "name", "active", "created", "last login")
    for o in operators:
        active = "yes" if o.is_active else "no"
        table.add_row(o.email, o.name, active, _when(o.created_at), _when(o.last_login_at))
    _print_table(table)
    out.print(f"{len(operators)} operator(s)")


@operators_app.command("deactivate")
def deactivate(email: EmailOpt) -> None:
    """Deactivate an operator: its logins, access tokens and API tokens are refused at once."""
    operator = _run(lambda s: s.deactivate(email))
    out.print(f"operator {operator.email} deactivated; its API tokens are revoked", highlight=False)


@token_app.command("create")
def token_create(
    email: EmailOpt,
    name: Annotated[str, typer.Option("--name", help="What the token is for (1-100 characters).")],
    expires_in_days: Annotated[
        int | None,
        typer.Option("--expires-in-days", min=1, max=3650, help="Expire after D days."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print its secret once (to stdout); only a hash is stored."""
    if not name.strip() or len(name.strip()) > 100:
        _fail("--name must be 1-100 characters", 2)
    token, secret = _run(lambda s: s.create_token(email, name, expires_in_days))
    if as_json:
        typer.echo(json.dumps({**_token_dict(token, email.strip().lower()), "secret": secret}))
        return
    err.print(
        f"token {token.id} ({token.prefix}...) created, expires {_when(token.expires_at)}. "
        "Copy the secret now: it is not shown again.",
        highlight=False,
    )
    typer.echo(secret)


@token_app.command("list")
def token_list(
    email: Annotated[str | None, typer.Option("--email", help="Only this operator's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens (never their secrets)."""
    rows = _run(lambda s: s.list_tokens(email))
    if as_json:
        typer.echo(json.dumps([_token_dict(t, e) for t, e in rows]))
        return
    table = _table("id", "operator", "name", "prefix", "created", "expires", "last used", "revoked")
    for t, e in rows:
        times = (t.created_at, t.expires_at, t.last_used_at, t.revoked_at)
        table.add_row(str(t.id), e, t.name, t.prefix, *map(_when, times))
    _print_table(table)
    out.print(f"{len(rows)} token(s)")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id.")]) -> None:
    """Revoke an API token: it is refused from the next request on."""
    try:
        parsed = uuid.UUID(token_id)
    except ValueError:
        _fail(f"'{token_id}' is not a token id (see `tenantflow operators token list`)", 2)
    token = _run(lambda s: s.revoke_token(parsed))
    out.print(f"token {token.id} ({token.prefix}...) revoked", highlight=False)
