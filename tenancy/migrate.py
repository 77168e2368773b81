"""Migrations across the shared schema and every tenant schema.

Shared schema first, then every tenant whose registry row is behind the head, each in its own
transaction on its own connection, in parallel worker processes (Alembic's ``op`` proxy is
process-global, so threads cannot share it). The revision a tenant reached is written to the
registry in that same transaction: a run with nothing to do is a handful of queries whatever the
tenant count, a failing tenant leaves the others migrated, and a re-run picks up only what is
left. A PostgreSQL advisory lock keeps two migrators apart.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from tenancy.naming import SHARED_SCHEMA, quote_schema, validate_schema_name

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
MIGRATION_LOCK_KEY = 0x7466_6D69  # "tfmi": one advisory lock for every migrator
MigrationSet = Literal["shared", "tenant"]


class MigrationLocked(RuntimeError):
    """Another migrator holds the advisory lock."""


@lru_cache(maxsize=2)
def alembic_config(name: MigrationSet) -> Config:
    """The Alembic config of a migration set (parsed once per process: reused per tenant)."""
    cfg = Config(str(ROOT / "alembic.ini"), ini_section=name)
    cfg.set_main_option("script_location", str(ROOT / "migrations" / name))
    return cfg


@lru_cache(maxsize=2)
def script_directory(name: MigrationSet) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(name))


def head(name: MigrationSet) -> str:
    rev = script_directory(name).get_current_head()
    if rev is None:
        raise RuntimeError(f"the {name} migration set has no revisions")
    return rev


def resolve_revision(name: MigrationSet, target: str) -> str:
    """A target ('head', a revision id or a unique prefix) as a full revision id."""
    try:
        rev = script_directory(name).get_revision(target)
    except CommandError as exc:
        raise ValueError(f"unknown {name} revision {target!r}: {exc}") from exc
    if rev is None:
        raise ValueError(f"unknown {name} revision {target!r}")
    return str(rev.revision)


def revisions_before(name: MigrationSet, target: str) -> list[str]:
    """Every revision older than target (target excluded): the tenants that need upgrading."""
    script = script_directory(name)
    return [r.revision for r in script.iterate_revisions(target, "base") if r.revision != target]


# --- env.py entry points (plain `alembic` commands) -------------------------------------------


def _unschematized_tenant_metadata() -> Any:
    """Tenant models without the placeholder schema, for autogenerate against search_path."""
    from sqlalchemy import MetaData

    import backend.models  # noqa: F401  (registers every model)
    from backend.kit.db import NAMING_CONVENTION, TenantBase

    meta = MetaData(naming_convention=NAMING_CONVENTION)
    for table in TenantBase.metadata.tables.values():
        table.to_metadata(meta, schema=None)  # type: ignore[arg-type]
    return meta


def run_shared_env(context: Any) -> None:
    import backend.models  # noqa: F401
    from backend.config import get_settings
    from backend.kit.db import SharedBase, make_engine

    opts = {
        "version_table_schema": SHARED_SCHEMA,
        "target_metadata": SharedBase.metadata,
        "include_schemas": True,
        "include_name": lambda name, type_, _p: type_ != "schema" or name == SHARED_SCHEMA,
    }
    if context.is_offline_mode():
        context.configure(url=get_settings().database_url, literal_binds=True, **opts)
        with context.begin_transaction():
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema(SHARED_SCHEMA)}")
            context.run_migrations()
        return
    engine = make_engine(get_settings().database_url, poolclass=NullPool)
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_schema(SHARED_SCHEMA)}")
        context.configure(connection=conn, **opts)
        context.run_migrations()
    engine.dispose()


def run_tenant_env(context: Any) -> None:
    from backend.config import get_settings
    from backend.kit.db import make_engine
    from tenancy import registry

    if context.is_offline_mode():
        context.configure(
            url=get_settings().database_url, literal_binds=True, transactional_ddl=False
        )
        context.run_migrations()
        return
    slug = context.get_x_argument(as_dictionary=True).get("tenant")
    if not slug:
        raise SystemExit(
            "tenant migrations run one tenant at a time: "
            "alembic -n tenant -x tenant=<slug> upgrade head (all tenants: tenantflow migrate)"
        )
    engine = make_engine(get_settings().database_url, poolclass=NullPool)
    with engine.connect() as conn:
        tenant = registry.get_by_slug(conn, slug)
        conn.rollback()
        if tenant is None:
            raise SystemExit(f"no tenant {slug!r} in the registry")
        with conn.begin():
            _prepare_tenant_transaction(conn, tenant.id, tenant.schema_name)
            context.configure(
                connection=conn,
                version_table_schema=tenant.schema_name,
                target_metadata=_unschematized_tenant_metadata(),
                include_name=lambda name, type_, _p: (
                    not (type_ == "table" and name == "alembic_version")
                ),
            )
            context.run_migrations()
            _record_revision(conn, tenant.id, tenant.schema_name)
    engine.dispose()


# --- programmatic runs -------------------------------------------------------------------------


class TenantGone(RuntimeError):
    """The tenant was deleted (or is being deleted) while the migration ran."""


def _prepare_tenant_transaction(conn: Connection, tenant_id: uuid.UUID, schema: str) -> None:
    """Lock the tenant's registry row against deletion, then point search_path at its schema."""
    from tenancy.registry import Tenant

    status = conn.execute(
        select(Tenant.status).where(Tenant.id == tenant_id).with_for_update(read=True)
    ).scalar()
    if status is None or status == "deleting":
        raise TenantGone(f"tenant {schema} is deleted or being deleted")
    quoted = quote_schema(schema)
    conn.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")
    conn.exec_driver_sql("SET LOCAL lock_timeout = '15s'")


def _run(conn: Connection | None, name: MigrationSet, target: str, **configure: Any) -> None:
    cfg = alembic_config(name)
    script = script_directory(name)

    def upgrade(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with EnvironmentContext(
        cfg, script, fn=upgrade, destination_rev=target, as_sql=conn is None
    ) as env:
        env.configure(connection=conn, **configure)
        env.run_migrations()


def _current_revision(conn: Connection, schema: str) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table_schema": schema})
    return ctx.get_current_revision()


def _record_revision(conn: Connection, tenant_id: uuid.UUID, schema: str) -> str | None:
    from tenancy.registry import Tenant

    rev = _current_revision(conn, schema)
    conn.execute(update(Tenant).where(Tenant.id == tenant_id).values(schema_revision=rev))
    return rev


def upgrade_shared(engine: Engine, target: str = "head") -> str | None:
    """Bring the shared schema to ``target``; returns the revision reached."""
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_schema(SHARED_SCHEMA)}")
        current = _current_revision(conn, SHARED_SCHEMA)
        if current == resolve_revision("shared", target):
            return current
        _run(conn, "shared", target, version_table_schema=SHARED_SCHEMA)
        return _current_revision(conn, SHARED_SCHEMA)


def upgrade_tenant(
    conn: Connection, tenant_id: uuid.UUID, schema: str, target: str = "head"
) -> str | None:
    """Migrate one tenant schema inside one transaction and record the revision reached."""
    validate_schema_name(schema)
    with conn.begin():
        _prepare_tenant_transaction(conn, tenant_id, schema)
        _run(conn, "tenant", target, version_table_schema=schema)
        return _record_revision(conn, tenant_id, schema)


_ddl_lock = threading.Lock()


@lru_cache(maxsize=8)
def _tenant_ddl(target: str) -> str:
    buf = io.StringIO()
    with _ddl_lock:
        _run(
            None,
            "tenant",
            target,
            dialect_name="postgresql",
            output_buffer=buf,
            literal_binds=True,
            transactional_ddl=False,
        )
    return buf.getvalue()


def tenant_ddl(target: str = "head") -> str:
    """The tenant migrations base -> target rendered as SQL (Alembic offline mode), cached.

    Provisioning runs this in one round trip under ``search_path`` instead of stepping through
    Alembic online: the same DDL, version table included, without the per-step overhead.
    """
    return _tenant_ddl(resolve_revision("tenant", target))


# --- all tenants -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantOutcome:
    slug: str
    ok: bool
    revision: str | None
    seconds: float
    error: str | None = None
    skipped: bool = False


@dataclass
class MigrationReport:
    shared_revision: str | None
    target: str
    pending: int = 0
    outcomes: list[TenantOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[TenantOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed


_worker_engine: Engine | None = None


def _init_worker(database_url: str) -> None:
    global _worker_engine
    from backend.kit.db import make_engine

    _worker_engine = make_engine(database_url, pool_size=1, max_overflow=0)


def _migrate_one(tenant_id: uuid.UUID, slug: str, schema: str, target: str) -> TenantOutcome:
    assert _worker_engine is not None
    return _migrate_with(_worker_engine, tenant_id, slug, schema, target)


def _migrate_with(
    engine: Engine, tenant_id: uuid.UUID, slug: str, schema: str, target: str
) -> TenantOutcome:
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            rev = upgrade_tenant(conn, tenant_id, schema, target)
    except TenantGone as exc:
        return TenantOutcome(slug, True, None, time.perf_counter() - started, str(exc), True)
    except Exception as exc:  # one tenant's failure is reported, never fatal to the run
        message = " ".join(str(exc).split())[:500]
        return TenantOutcome(slug, False, None, time.perf_counter() - started, message)
    return TenantOutcome(slug, True, rev, time.perf_counter() - started)


def _acquire_lock(conn: Connection) -> None:
    got = conn.execute(select(func.pg_try_advisory_lock(MIGRATION_LOCK_KEY))).scalar()
    if not got:
        raise MigrationLocked("another migration run holds the lock; try again when it ends")


def _pending_tenants(
    conn: Connection, target_rev: str, only: Iterable[str] | None, every: bool
) -> list[tuple[uuid.UUID, str, str]]:
    from tenancy.registry import Tenant

    tenants: Table = Tenant.__table__  # type: ignore[assignment]
    query = select(tenants.c.id, tenants.c.slug, tenants.c.schema_name).where(
        tenants.c.status != "deleting"
    )
    if not every:
        # Only tenants behind the target; a tenant ahead of it is never touched (no downgrades).
        behind = revisions_before("tenant", target_rev)
        query = query.where(
            tenants.c.schema_revision.is_(None) | tenants.c.schema_revision.in_(behind)
        )
    if only:
        query = query.where(tenants.c.slug.in_(list(only)))
    return [(r.id, r.slug, r.schema_name) for r in conn.execute(query.order_by(tenants.c.slug))]


def migrate_all(
    engine: Engine,
    *,
    jobs: int = 4,
    target: str = "head",
    tenants: Iterable[str] | None = None,
    every: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[TenantOutcome], None] | None = None,
    redis: Any = None,
) -> MigrationReport:
    """Shared schema, then every tenant behind ``target``; see the module docstring.

    With ``redis`` (a sync client), each migrated tenant's registry cache entry is
    invalidated, so API processes stop answering 503 tenant-migrating at once rather than
    when the cached (behind) entry expires.
    """
    target_rev = resolve_revision("tenant", target)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
        _acquire_lock(lock_conn)
        try:
            shared_rev = upgrade_shared(engine)
            pending = _pending_tenants(lock_conn, target_rev, tenants, every)
            report = MigrationReport(shared_rev, target_rev, len(pending))
            if on_start:
                on_start(len(pending))
            ids = {slug: tenant_id for tenant_id, slug, _schema in pending}
            for outcome in _run_tenants(engine, pending, target_rev, jobs):
                if outcome.ok and not outcome.skipped:
                    _invalidate_cache(redis, ids[outcome.slug], outcome.slug)
                report.outcomes.append(outcome)
                if on_result:
                    on_result(outcome)
            return report
        finally:
            lock_conn.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))


def _invalidate_cache(redis: Any, tenant_id: uuid.UUID, slug: str) -> None:
    from tenancy import registry

    try:
        registry.invalidate(redis, registry.TenantRef(tenant_id, slug))
    except registry.InvalidationFailed:
        # Only availability is at stake: the tenant is served once the cached entry expires.
        log.warning("registry cache of %s not invalidated after its migration", slug)


def _run_tenants(
    engine: Engine, pending: list[tuple[uuid.UUID, str, str]], target: str, jobs: int
) -> Iterable[TenantOutcome]:
    if not pending:
        return
    if jobs <= 1 or len(pending) == 1:
        for tenant_id, slug, schema in pending:
            yield _migrate_with(engine, tenant_id, slug, schema, target)
        return
    url = engine.url.render_as_string(hide_password=False)
    workers = min(jobs, len(pending))
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(url,))
    futures = {pool.submit(_migrate_one, *p, target): p for p in pending}
    try:
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                # A worker process died (OOM kill, signal): its tenants' transactions rolled
                # back. Report them as failed; a re-run picks them up.
                yield TenantOutcome(
                    futures[future][1],
                    False,
                    None,
                    0.0,
                    "migration worker process died; re-run to resume",
                )
    finally:
        # On Ctrl-C or an error, tenants not yet started are not started.
        pool.shutdown(wait=True, cancel_futures=True)


def revision_status(engine: Engine) -> tuple[str | None, str, list[tuple[str | None, str, int]]]:
    """(shared revision, tenant head, [(revision, status, tenant count)])."""
    from tenancy.registry import Tenant

    with engine.connect() as conn:
        shared_rev = _current_revision(conn, SHARED_SCHEMA)
        rows = conn.execute(
            select(Tenant.schema_revision, Tenant.status, func.count())
            .group_by(Tenant.schema_revision, Tenant.status)
            .order_by(Tenant.schema_revision, Tenant.status)
        ).all()
    return shared_rev, head("tenant"), [(r[0], r[1], r[2]) for r in rows]
