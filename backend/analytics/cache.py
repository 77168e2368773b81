"""Stats cache invalidation: one generation counter per tenant.

Every task write calls ``invalidate`` after its commit. Cached documents are keyed by the
generation they were computed at, so one INCR makes all of the tenant's cached stats stale;
they expire by TTL. If Redis is away the write still succeeds (it is committed already); the
stale figures then live at most until their TTL ends.
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tenancy import keys

log = logging.getLogger(__name__)


async def invalidate(redis: aioredis.Redis, tenant_id: uuid.UUID) -> None:
    try:
        await redis.incr(keys.stats_generation_key(tenant_id))
    except RedisError:
        log.warning("stats cache of tenant %s not invalidated (Redis away)", tenant_id)
