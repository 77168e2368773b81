"""What the operator commands over platform services share: exit codes, JSON read from a file
or stdin, the audit actor, and PostgreSQL and Redis opened for one command."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:  # the CLI imports lazily: `tenantflow --help` stays fast
    import redis as redis_sync
    from pydantic import ValidationError
    from sqlalchemy import Engine

T = TypeVar("T")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def invalid(exc: ValidationError) -> NoReturn:
    """Exit 2 with one `where: what` per validation error."""
    lines = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
    fail("; ".join(lines), 2)


def read_json(source: str) -> Any:
    """The JSON document in the file `source`, or on stdin for `-`; exit 2 when there is none."""
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {where}: {exc}", 2)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{where} is not JSON: {exc}", 2)


def actor() -> str:
    """Who the audit trail names for a change made from the command line: cli:<login name>."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        name = "unknown"
    return f"cli:{name}"


def table(*headers: str) -> Table:
    # Names and ids fold instead of being cut: a listing must be copyable and greppable.
    return Table(*(Column(h, overflow="fold") for h in headers))


def print_table(table: Table) -> None:
    # Piped output is not cut to 80 columns (rich's default without a terminal).
    (out if out.is_terminal else Console(soft_wrap=True, width=240)).print(table)


def run(work: Callable[[Engine, redis_sync.Redis], T]) -> T:
    """Run one command's work with PostgreSQL and Redis.

    Exit 2 for input the service refuses (422), 1 for anything else it refuses (an unknown
    name: 404) or when PostgreSQL is away."""
    import redis as redis_sync
    from pydantic import ValidationError
    from sqlalchemy import exc as sa_exc

    from backend.config import get_settings
    from backend.kit.db import make_engine
    from backend.kit.errors import Problem

    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    client = redis_sync.Redis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        return work(engine, client)
    except Problem as exc:
        fail(exc.detail, 2 if exc.status in (400, 422) else 1)
    except ValidationError as exc:
        invalid(exc)
    except sa_exc.ProgrammingError as exc:
        fail(f"the shared schema is not migrated; run `tenantflow migrate` ({exc.orig})")
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        fail(f"PostgreSQL is not answering: {exc.orig}")
    finally:
        client.close()
        engine.dispose()
