"""Per-tenant cap on handler messages waiting in the queues (fairness within a partition).

A partition's queue is first in, first out: a tenant that publishes 10,000 events at once
would make every other tenant of the partition wait behind all of them. So the relay publishes
a tenant's batch messages only while fewer than ``event_inflight_per_tenant`` of them are in
flight, and holds the rest in the outbox, where they cost nothing. In flight = published and
not yet finished. With the default of 2 (one per worker process of a 2-process worker) another
tenant's event waits behind at most one batch of the busy tenant per worker process, while the
busy tenant still keeps the workers busy (measured with bench/events).

Kept in a sorted set per tenant, member = the message id, score = publish time. A member older
than ``STALE_SECONDS`` is dropped when counting: a message whose finish was never recorded (a
worker killed for good, a purged queue) cannot hold the tenant back for longer than that.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable

import redis as redis_sync

from tenancy import keys

#: Longer than a batch message normally takes from publish to finish. A message lost with a
#: killed worker holds a slot of its tenant this long; a message that waits longer than this
#: in a long queue stops counting (the tenant then gets more than its share, never less).
STALE_SECONDS = 30.0


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


def release(client: redis_sync.Redis, tenant_id: uuid.UUID, message_id: str) -> None:
    """The message finished. Best effort: a failure here only delays the tenant a little."""
    with contextlib.suppress(redis_sync.RedisError):
        client.zrem(_key(tenant_id), message_id)
