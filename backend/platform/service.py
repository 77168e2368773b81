"""Operator use cases on tenants, shared by the platform API and the CLI."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import redis as redis_sync
from sqlalchemy import Engine

from backend.identity.service import hash_password, seed_owner
from backend.kit.errors import Problem
from backend.kit.pagination import decode_keyset_cursor, encode_keyset_cursor
from tenancy import provisioning, registry
from tenancy.registry import TenantRecord

log = logging.getLogger(__name__)


def create_tenant(
    engine: Engine,
    redis: redis_sync.Redis | None,
    *,
    slug: str,
    name: str,
    plan: str,
    owner_email: str,
    owner_password: str,
) -> TenantRecord:
    """Provision a tenant with its owner account; 409 when the slug is taken."""
    hashed = hash_password(owner_password)  # before the transaction: it holds locks
    try:
        return provisioning.create_tenant(
            engine,
            slug=slug,
            name=name,
            plan=plan,
            redis=redis,
            seed=lambda conn, t: seed_owner(conn, t, owner_email, hashed),
        )
    except provisioning.TenantExists as exc:
        raise Problem(409, "tenant-exists", str(exc)) from exc


def get_tenant(engine: Engine, slug: str) -> TenantRecord:
    with engine.connect() as conn:
        record = registry.get_by_slug(conn, slug)
    if record is None:
        raise Problem(404, "tenant-not-found", f"No tenant '{slug}'.")
    return record


def list_tenants(
    engine: Engine, *, limit: int, cursor: str | None, status: str | None
) -> tuple[list[TenantRecord], str | None]:
    after = decode_keyset_cursor(cursor) if cursor else None
    with engine.connect() as conn:
        rows = registry.list_tenants(conn, after=after, limit=limit + 1, status=status)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_keyset_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


def tenants_stuck_deleting(engine: Engine, older_than_seconds: int) -> list[uuid.UUID]:
    """Tenants left in 'deleting' for longer than ``older_than_seconds``."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
    with engine.connect() as conn:
        return registry.deleting_before(conn, cutoff)


def _stale_cache_problem(exc: registry.InvalidationFailed, stale_seconds: int) -> Problem:
    tenant = exc.tenant
    return Problem(
        503,
        "cache-invalidation-failed",
        f"Tenant '{tenant.slug}' is now '{tenant.status}' in PostgreSQL, but Redis could not be "
        f"reached to invalidate the registry cache: API processes may serve its old status for "
        f"up to {stale_seconds} seconds. Repeat the request once Redis answers to enforce the "
        f"change at once.",
        headers={"Retry-After": "5"},
        slug=tenant.slug,
        stored_status=tenant.status,
        stale_for_seconds=stale_seconds,
    )


def update_tenant(
    engine: Engine,
    redis: redis_sync.Redis | None,
    slug: str,
    changes: dict[str, Any],
    *,
    stale_seconds: int,
) -> TenantRecord:
    """Apply changes; 404 when unknown, 503 when the change is stored but caches may be stale.

    ``stale_seconds`` is how long caches can keep the old row (for the message).
    """
    if not changes:
        return get_tenant(engine, slug)
    try:
        return provisioning.update_tenant(engine, slug, changes, redis=redis)
    except provisioning.TenantNotFound as exc:
        raise Problem(404, "tenant-not-found", f"No tenant '{slug}'.") from exc
    except registry.InvalidationFailed as exc:
        raise _stale_cache_problem(exc, stale_seconds) from exc


def delete_tenant(
    engine: Engine, redis: redis_sync.Redis | None, slug: str, *, stale_seconds: int
) -> TenantRecord:
    """Mark the tenant deleting and queue the job that drops its schema.

    When the caches could not be invalidated, the drop is not queued: a process still serving
    the tenant from a stale copy would hit a missing schema. The beat sweep drops it later
    (its delay is far longer than the cache TTL), and the answer is 503.
    """
    from backend.platform.jobs import drop_tenant_schema

    try:
        record = provisioning.mark_deleting(engine, slug, redis=redis)
    except provisioning.TenantNotFound as exc:
        raise Problem(404, "tenant-not-found", f"No tenant '{slug}'.") from exc
    except registry.InvalidationFailed as exc:
        raise _stale_cache_problem(exc, stale_seconds) from exc
    try:
        drop_tenant_schema.delay(str(record.id))
    except Exception:  # broker away: the beat sweep re-queues tenants left in 'deleting'
        log.warning("could not queue the schema drop of %s; the sweep will retry", slug)
    return record
