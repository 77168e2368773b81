"""Create, suspend, resume and delete tenants.

Creation is one transaction: registry row, schema, the tenant DDL at head (rendered once per
process from the Alembic migrations, see ``tenancy.migrate.tenant_ddl``) and whatever the caller
seeds (the owner account). Either all of it exists afterwards or none of it. Deletion marks the
tenant ``deleting`` (refused once caches are invalidated) and leaves dropping the schema to a
background job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import redis as redis_sync
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tenancy import keys, registry
from tenancy.migrate import resolve_revision, tenant_ddl
from tenancy.naming import quote_schema, schema_for_slug, validate_slug
from tenancy.registry import Tenant, TenantRecord

log = logging.getLogger(__name__)

Seeder = Callable[[Connection, TenantRecord], object]


class TenantExists(ValueError):
    """The slug is taken."""


class TenantNotFound(LookupError):
    """No tenant with that slug (or it is being deleted)."""


def create_tenant(
    engine: Engine,
    *,
    slug: str,
    name: str,
    plan: str = "free",
    seed: Seeder | None = None,
    target: str = "head",
    redis: redis_sync.Redis | None = None,
) -> TenantRecord:
    """Create a tenant and its schema at ``target`` in one transaction; seed runs inside it."""
    validate_slug(slug)
    if plan not in registry.PLANS:
        raise ValueError(f"unknown plan {plan!r}")
    schema = schema_for_slug(slug)
    revision = resolve_revision("tenant", target)
    ddl = tenant_ddl(revision)
    tenant_id = uuid.uuid4()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Tenant).values(
                    id=tenant_id,
                    slug=slug,
                    name=name,
                    schema_name=schema,
                    plan=plan,
                    status="active",
                    schema_revision=revision,
                )
            )
            quoted = quote_schema(schema)
            conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
            conn.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")
            conn.exec_driver_sql(ddl)
            conn.exec_driver_sql("SET LOCAL search_path TO DEFAULT")
            record = registry.get_by_id(conn, tenant_id)
            assert record is not None
            if seed is not None:
                seed(conn, record)
    except IntegrityError as exc:
        if "uq_tenants_slug" in str(exc) or "uq_tenants_schema_name" in str(exc):
            raise TenantExists(f"a tenant with slug {slug!r} exists") from exc
        raise
    _invalidate_harmless(redis, record)
    return record


def _invalidate_harmless(redis: redis_sync.Redis | None, record: TenantRecord) -> None:
    """Invalidate where a stale copy cannot let anyone in: log a failure, do not raise.

    A new tenant has no cached copy of its own, and a dropped one was cached as 'deleting'
    (refused) at worst.
    """
    try:
        registry.invalidate(redis, record)
    except registry.InvalidationFailed:
        log.warning("registry cache of %s not invalidated; its TTL will expire it", record.slug)


def set_status(
    engine: Engine, slug: str, status: str, redis: redis_sync.Redis | None = None
) -> TenantRecord:
    return update_tenant(engine, slug, {"status": status}, redis=redis)


def update_tenant(
    engine: Engine, slug: str, changes: dict[str, object], redis: redis_sync.Redis | None = None
) -> TenantRecord:
    """Change name, plan, status or queue of a live tenant.

    Raises ``registry.InvalidationFailed`` (the change is committed) when caches could not be
    invalidated.
    """
    allowed = {"name", "plan", "status", "queue"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if "plan" in changes and changes["plan"] not in registry.PLANS:
        raise ValueError(f"unknown plan {changes['plan']!r}")
    if changes.get("queue") is not None:
        keys.pinned_queue(str(changes["queue"]))  # raises on a name no worker could consume
    if "status" in changes and changes["status"] not in ("active", "suspended"):
        raise ValueError("status can be set to 'active' or 'suspended' (delete the tenant instead)")
    with engine.begin() as conn:
        result = conn.execute(
            update(Tenant)
            .where(Tenant.slug == slug, Tenant.status != "deleting")
            .values(**changes)
            .returning(Tenant.id)
        ).first()
        if result is None:
            raise TenantNotFound(slug)
        record = registry.get_by_id(conn, result.id)
    assert record is not None
    registry.invalidate(redis, record)
    return record


def mark_deleting(engine: Engine, slug: str, redis: redis_sync.Redis | None = None) -> TenantRecord:
    """First step of deletion: the tenant is refused everywhere from now on.

    Raises ``registry.InvalidationFailed`` (the change is committed) when caches could not be
    invalidated: then cached copies may still serve it until their TTL ends.
    """
    with engine.begin() as conn:
        result = conn.execute(
            update(Tenant).where(Tenant.slug == slug).values(status="deleting").returning(Tenant.id)
        ).first()
        if result is None:
            raise TenantNotFound(slug)
        record = registry.get_by_id(conn, result.id)
    assert record is not None
    registry.invalidate(redis, record)
    return record


def drop_tenant(
    engine: Engine, tenant_id: uuid.UUID, redis: redis_sync.Redis | None = None
) -> bool:
    """Second step: drop the schema and the registry row of a ``deleting`` tenant (idempotent)."""
    with engine.begin() as conn:
        record = registry.get_by_id(conn, tenant_id)
        if record is None:
            return False
        if record.status != "deleting":
            raise ValueError(f"tenant {record.slug} is {record.status}, not deleting")
        conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_schema(record.schema_name)} CASCADE")
        conn.execute(delete(Tenant).where(Tenant.id == tenant_id))
    _invalidate_harmless(redis, record)
    return True
