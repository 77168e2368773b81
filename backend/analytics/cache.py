"""Stats cache: one generation counter per tenant, and documents keyed by generation.

Every task write calls ``invalidate`` after its commit. Cached documents are keyed by the
generation they were computed at, so one INCR makes all of the tenant's cached stats stale;
they expire by TTL. A document computed while a write bumped the generation is stored under the
old generation, which nobody reads any more: no race can pin stale figures. If Redis is away
the write still succeeds (it is committed already); the stale figures then live at most until
their TTL ends. Reads fall back to computing from the database when Redis is away.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Literal, TypeVar

import redis.asyncio as aioredis
from fastapi import Depends
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from tenancy import keys

log = logging.getLogger(__name__)

#: Format version of cached documents: bump it when a stats schema changes, so that during a
#: rolling deploy old and new processes read and write disjoint keys.
FORMAT = "v1"

Doc = TypeVar("Doc", bound=BaseModel)
CacheStatus = Literal["hit", "miss", "bypass"]


async def invalidate(redis: aioredis.Redis, tenant_id: uuid.UUID) -> None:
    try:
        await redis.incr(keys.stats_generation_key(tenant_id))
    except RedisError:
        log.warning("stats cache of tenant %s not invalidated (Redis away)", tenant_id)


async def cached(
    redis: aioredis.Redis,
    tenant_id: uuid.UUID,
    parts: tuple[str, ...],
    model: type[Doc],
    compute: Callable[[], Awaitable[Doc]],
    *,
    ttl: int,
) -> tuple[Doc, CacheStatus]:
    """The tenant's cached document ``parts`` at the current generation, else ``compute()``
    (stored for ``ttl`` seconds). Redis away: computed, not stored ("bypass")."""
    try:
        generation = int(await redis.get(keys.stats_generation_key(tenant_id)) or 0)
        key = keys.stats_cache_key(tenant_id, generation, FORMAT, *parts)
        raw = await redis.get(key)
    except RedisError:
        log.warning("stats cache of tenant %s not read (Redis away)", tenant_id)
        return await compute(), "bypass"
    if raw is not None:
        try:
            return model.model_validate_json(raw), "hit"
        except ValidationError:
            log.warning("unreadable stats cache entry %s dropped", key)
    document = await compute()
    try:
        await redis.set(key, document.model_dump_json(), ex=ttl)
    except RedisError:
        log.warning("stats cache of tenant %s not stored (Redis away)", tenant_id)
    return document, "miss"


async def committed_write(
    session: TenantDB, resources: ResourcesDep, tenant: CurrentTenant
) -> AsyncIterator[AsyncSession]:
    """The unit of work of a write that stats depend on (tasks, projects): commits when the
    route returns, then invalidates the tenant's stats (nothing happens when the route raises)."""
    yield session
    await session.commit()
    await invalidate(resources.redis, tenant.id)


#: A session whose commit also makes the tenant's cached stats stale.
StatsWriteDB = Annotated[AsyncSession, Depends(committed_write, scope="function")]
