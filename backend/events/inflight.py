"""Per-tenant cap on handler messages waiting in the queues (fairness within a partition).

A partition's queue is first in, first out: a tenant that publishes 10,000 events at once
would make every other tenant of the partition wait behind all of them. So the relay publishes
a tenant's messages only while fewer than ``event_inflight_per_tenant`` of them are in flight,
and holds the rest in the outbox, where they cost nothing. In flight = published and not yet
finished (handled, skipped as duplicate, or dead-lettered).

Kept in a sorted set per tenant, member ``<event id>:<handler>``, score = publish time. A member
older than ``STALE_SECONDS`` is dropped when counting: a message whose finish was never recorded
(a worker killed for good, Redis data lost) cannot hold the tenant back for longer than that.
Republishing a member only refreshes its score.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable

import redis as redis_sync

from tenancy import keys

#: Longer than a message takes from publish to finish, retries excluded (a retried message
#: still counts, it waits in the queue again).
STALE_SECONDS = 600.0


def _key(tenant_id: uuid.UUID) -> str:
    return keys.tenant_key(tenant_id, "events", "inflight")


def room(client: redis_sync.Redis, tenant_id: uuid.UUID, cap: int) -> int:
    """How many more messages the tenant may have in flight now."""
    key = _key(tenant_id)
    now = time.time()
    with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now - STALE_SECONDS)
        pipe.zcard(key)
        _, count = pipe.execute()
    return max(0, cap - int(count))


def add(pipe: redis_sync.client.Pipeline, tenant_id: uuid.UUID, members: Iterable[str]) -> None:
    """Count these messages as in flight (on the relay's pipeline, before publishing)."""
    now = time.time()
    mapping = {m: now for m in members}
    if mapping:
        key = _key(tenant_id)
        pipe.zadd(key, mapping)
        pipe.expire(key, int(STALE_SECONDS) * 2)


def member(event_id: str, handler: str) -> str:
    return f"{event_id}:{handler}"


def release(client: redis_sync.Redis, tenant_id: uuid.UUID, event_id: str, handler: str) -> None:
    """The message finished. Best effort: a failure here only delays the tenant a little."""
    with contextlib.suppress(redis_sync.RedisError):
        client.zrem(_key(tenant_id), member(event_id, handler))
