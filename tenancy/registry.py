"""The tenant registry (shared schema) and its cached lookup.

Writes go through the synchronous functions here (provisioning, CLI, workers). The request path
reads through ``RegistryCache``: an in-process copy with a short TTL in front of a Redis copy in
front of PostgreSQL. Every change deletes the Redis copy and publishes the tenant on
``tf:platform:registry:changed`` so processes that listen drop their local copy at once; the
short local TTL bounds staleness for those that do not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from typing import Any

import redis as redis_sync
import redis.asyncio as aioredis
from sqlalchemy import CheckConstraint, DateTime, Index, String, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import SharedBase
from tenancy.keys import platform_key, registry_cache_key, registry_generation_key
from tenancy.naming import validate_schema_name

log = logging.getLogger(__name__)

STATUSES = ("active", "suspended", "deleting")
PLANS = ("free", "pro", "enterprise")
INVALIDATION_CHANNEL = platform_key("registry", "changed")

# Fill the cache only if no change happened since the reader looked (generation unchanged):
# otherwise a reader that loaded a row just before a change could write the old row back.
_FILL_IF_UNCHANGED = """
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""


class Tenant(SharedBase):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        CheckConstraint(f"plan IN {PLANS!r}", name="plan"),
        Index("ix_tenants_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    schema_name: Mapped[str] = mapped_column(String(63), unique=True)
    plan: Mapped[str] = mapped_column(String(20), default="free")
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    schema_revision: Mapped[str | None] = mapped_column(String(64), index=True)
    database_key: Mapped[str] = mapped_column(String(64), default="default")
    queue: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TenantRecord:
    """What the rest of the code knows of a tenant: an immutable copy of its registry row."""

    id: uuid.UUID
    slug: str
    name: str
    schema_name: str
    plan: str
    status: str
    schema_revision: str | None
    database_key: str
    queue: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> TenantRecord:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(cls)})

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["id"] = str(self.id)
        data["created_at"] = self.created_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TenantRecord:
        """Decode a cached record; ValueError when it is not exactly what ``to_json`` writes."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or set(data) != _FIELD_NAMES:
                raise ValueError("unexpected fields")
            for name in _TEXT_FIELDS:
                if not isinstance(data[name], str):
                    raise ValueError(f"{name} is not a string")
            for name in _OPTIONAL_TEXT_FIELDS:
                if data[name] is not None and not isinstance(data[name], str):
                    raise ValueError(f"{name} is not a string or null")
            if data["status"] not in STATUSES:
                raise ValueError("unknown status")
            validate_schema_name(data["schema_name"])
            data["id"] = uuid.UUID(data["id"])
            data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"undecodable registry cache entry: {exc}") from exc
        return cls(**data)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TenantRecord))
_OPTIONAL_TEXT_FIELDS = ("schema_revision", "queue")
_TEXT_FIELDS = ("id", "slug", "name", "schema_name", "plan", "status", "database_key", "created_at")


_COLUMNS = [getattr(Tenant, f.name) for f in dataclasses.fields(TenantRecord)]


def get_by_slug(conn: Connection, slug: str) -> TenantRecord | None:
    row = conn.execute(select(*_COLUMNS).where(Tenant.slug == slug)).first()
    return TenantRecord.from_row(row) if row else None


def get_by_id(conn: Connection, tenant_id: uuid.UUID) -> TenantRecord | None:
    row = conn.execute(select(*_COLUMNS).where(Tenant.id == tenant_id)).first()
    return TenantRecord.from_row(row) if row else None


def get_by_schema(conn: Connection, schema_name: str) -> TenantRecord | None:
    row = conn.execute(select(*_COLUMNS).where(Tenant.schema_name == schema_name)).first()
    return TenantRecord.from_row(row) if row else None


def list_tenants(
    conn: Connection,
    *,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
    limit: int = 50,
    status: str | None = None,
) -> list[TenantRecord]:
    query = select(*_COLUMNS).order_by(Tenant.created_at, Tenant.id).limit(limit)
    if after is not None:
        query = query.where((Tenant.created_at, Tenant.id) > after)  # type: ignore[operator]
    if status is not None:
        query = query.where(Tenant.status == status)
    return [TenantRecord.from_row(r) for r in conn.execute(query)]


def deleting_before(conn: Connection, cutoff: dt.datetime) -> list[uuid.UUID]:
    """Ids of tenants marked deleting before ``cutoff`` (their drop job may have been lost)."""
    query = select(Tenant.id).where(Tenant.status == "deleting", Tenant.updated_at < cutoff)
    return list(conn.execute(query).scalars().all())


@dataclasses.dataclass(frozen=True, slots=True)
class TenantRef:
    """Just what cache invalidation needs: the keys a tenant is cached under."""

    id: uuid.UUID
    slug: str
    status: str = "unknown"


class InvalidationFailed(RuntimeError):
    """A registry change is committed, but Redis could not be told: caches may be stale."""

    def __init__(self, tenant: TenantRecord | TenantRef) -> None:
        super().__init__(
            f"registry cache invalidation failed for {tenant.slug}: Redis did not answer"
        )
        self.tenant = tenant


#: Pauses between invalidation attempts; a Redis failover or a dropped connection is often
#: over within a second.
INVALIDATION_BACKOFF = (0.1, 0.5)


def invalidate(redis: redis_sync.Redis | None, tenant: TenantRecord | TenantRef) -> None:
    """Forget cached copies of a tenant everywhere.

    Retried (``INVALIDATION_BACKOFF``); when Redis still cannot be reached it raises
    ``InvalidationFailed``: the Redis copy may then serve the old row until its TTL ends, and
    the caller must say so instead of reporting success.
    """
    if redis is None:
        return
    for pause in (*INVALIDATION_BACKOFF, None):
        try:
            pipe = redis.pipeline(transaction=True)
            pipe.incr(registry_generation_key())
            pipe.delete(
                registry_cache_key("slug", tenant.slug), registry_cache_key("id", str(tenant.id))
            )
            pipe.publish(
                INVALIDATION_CHANNEL, json.dumps({"id": str(tenant.id), "slug": tenant.slug})
            )
            pipe.execute()
            return
        except (redis_sync.RedisError, OSError) as exc:
            if pause is None:
                log.error("registry cache invalidation failed for %s: %s", tenant.slug, exc)
                raise InvalidationFailed(tenant) from exc
            log.warning("registry cache invalidation for %s failed, retrying", tenant.slug)
            time.sleep(pause)


class RegistryCache:
    """Cached tenant lookups for the request path: local TTL -> Redis -> PostgreSQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis: aioredis.Redis | None,
        *,
        local_ttl: float,
        redis_ttl: int,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._local_ttl = local_ttl
        self._redis_ttl = redis_ttl
        self._local: dict[tuple[str, str], tuple[float, TenantRecord | None]] = {}

    def forget(self, slug: str | None = None, tenant_id: str | None = None) -> None:
        if slug:
            self._local.pop(("slug", slug), None)
        if tenant_id:
            self._local.pop(("id", tenant_id), None)

    def forget_all(self) -> None:
        self._local.clear()

    async def by_slug(self, slug: str) -> TenantRecord | None:
        return await self._lookup("slug", slug)

    async def by_id(self, tenant_id: uuid.UUID | str) -> TenantRecord | None:
        return await self._lookup("id", str(tenant_id))

    async def _lookup(self, kind: str, value: str) -> TenantRecord | None:
        now = time.monotonic()
        hit = self._local.get((kind, value))
        if hit is not None and hit[0] > now:
            return hit[1]
        record, generation = await self._from_redis(kind, value)
        if record is None:
            record = await self._from_db(kind, value)
            if record is not None and generation is not None:
                await self._to_redis(record, generation)
        self._remember(kind, value, record, now)
        return record

    def _remember(self, kind: str, value: str, record: TenantRecord | None, now: float) -> None:
        if len(self._local) > 50_000:
            self._local.clear()
        expires = now + self._local_ttl
        self._local[(kind, value)] = (expires, record)
        if record is not None:
            other = ("id", str(record.id)) if kind == "slug" else ("slug", record.slug)
            self._local[other] = (expires, record)

    async def _from_redis(self, kind: str, value: str) -> tuple[TenantRecord | None, str | None]:
        """The cached entry and the registry generation it was read at (None: Redis away)."""
        if self._redis is None:
            return None, None
        try:
            key = registry_cache_key(kind, value)
        except ValueError:
            return None, None
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.get(registry_generation_key())
            raw, generation = await pipe.execute()
        except (aioredis.RedisError, OSError):
            log.warning("registry cache unavailable; reading the registry from PostgreSQL")
            return None, None
        generation = generation.decode() if generation else "0"
        if not raw:
            return None, generation
        try:
            return TenantRecord.from_json(raw), generation
        except ValueError:
            # Another format (a rolling deploy) or corruption: a miss, never a failed request.
            log.warning("dropping undecodable registry cache entry %s", key, exc_info=True)
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self._redis.delete(key)
            return None, generation

    async def _to_redis(self, record: TenantRecord, generation: str) -> None:
        assert self._redis is not None
        keys = [
            registry_cache_key("slug", record.slug),
            registry_cache_key("id", str(record.id)),
            registry_generation_key(),
        ]
        try:
            await self._redis.eval(  # type: ignore[misc]
                _FILL_IF_UNCHANGED, 3, *keys, record.to_json(), generation, self._redis_ttl
            )
        except (aioredis.RedisError, OSError):
            log.debug("registry cache fill skipped: Redis error", exc_info=True)

    async def _from_db(self, kind: str, value: str) -> TenantRecord | None:
        if kind == "id":
            try:
                key: Any = uuid.UUID(value)
            except ValueError:
                return None
            condition = Tenant.id == key
        else:
            condition = Tenant.slug == value
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(condition))).first()
        return TenantRecord.from_row(row) if row else None
