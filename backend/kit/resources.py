"""Process-wide connections of the API: engines, Redis clients and the registry cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

import redis as redis_sync
import redis.asyncio as aioredis
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.flags import service as flags_service
from backend.flags.store import FlagStore
from backend.kit.db import make_async_engine, make_engine
from backend.ratelimit import policy as ratelimit_policy
from backend.ratelimit.limiter import Limiter
from tenancy.registry import INVALIDATION_CHANNEL, RegistryCache

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sync_engine: Engine
    redis: aioredis.Redis
    sync_redis: redis_sync.Redis
    registry: RegistryCache
    limits: ratelimit_policy.PolicyStore
    limiter: Limiter
    flags: FlagStore
    _listener: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        # Timeouts for the API's connections only; the migrator makes its own engine.
        timeouts = {
            "options": f"-c lock_timeout={settings.db_lock_timeout_ms} "
            f"-c statement_timeout={settings.db_statement_timeout_ms}"
        }
        engine = make_async_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            connect_args=timeouts,
        )
        sync_engine = make_engine(
            settings.database_url, pool_size=2, max_overflow=4, connect_args=timeouts
        )
        timeout = settings.redis_timeout_seconds
        redis = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        sync_redis = redis_sync.Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        registry = RegistryCache(
            engine,
            redis,
            local_ttl=settings.registry_local_ttl_seconds,
            redis_ttl=settings.registry_redis_ttl_seconds,
        )
        limits = ratelimit_policy.PolicyStore(engine, settings.ratelimit_refresh_seconds)
        limiter = Limiter(
            redis,
            timeout_seconds=settings.ratelimit_redis_timeout_ms / 1000,
            stale_seconds=settings.ratelimit_inflight_stale_seconds,
        )
        flags = FlagStore(
            settings.redis_url,
            lambda: flags_service.load(sync_engine),
            latest=lambda: flags_service.latest_version(sync_engine),
            check_seconds=settings.flags_check_seconds,
        )
        return cls(
            settings, engine, sync_engine, redis, sync_redis, registry, limits, limiter, flags
        )

    def start_listening(self) -> None:
        """Drop local copies (registry entries, rate limits) as soon as any process publishes
        a change."""
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        # A client of its own without a read timeout: a quiet channel is not a dead one.
        client = aioredis.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=self.settings.redis_timeout_seconds,
            health_check_interval=30,
        )
        try:
            while True:
                await self._listen_once(client)
                await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _listen_once(self, client: aioredis.Redis) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(INVALIDATION_CHANNEL, ratelimit_policy.CHANNEL)
            # A (re)subscription may have missed messages: start from a clean local cache.
            self.registry.forget_all()
            self.limits.invalidate()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                if message.get("channel") == ratelimit_policy.CHANNEL.encode():
                    self.limits.invalidate()
                    continue
                data = json.loads(message["data"])
                self.registry.forget(data.get("slug"), data.get("id"))
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis away: the local TTL still bounds staleness meanwhile
            log.debug("registry invalidation listener reconnecting", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        self.flags.stop()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.redis.aclose()
        self.sync_redis.close()
        await self.engine.dispose()
        self.sync_engine.dispose()
