"""Per-tenant cap on handler messages waiting in the queues (fairness within a partition).

A partition's queue is first in, first out: a tenant that publishes 10,000 events at once
would make every other tenant of the partition wait behind all of them. So the relay publishes
a tenant's batch messages only while fewer than ``event_inflight_per_tenant`` of them are in
flight, and holds the rest in the outbox, where they cost nothing. In flight = published and
not yet finished. The cap should stay below the worker processes that consume the partition:
then a busy tenant never holds every process, and another tenant's event is taken by a free
one at once instead of waiting behind a batch. With the default of 1 and a 2-process worker
(bench/events, 10,000 events of backlog): a quiet tenant's p50 latency 1.27-1.36x its latency
alone, the busy tenant handled at ~760 events/s; a cap of 2 gave 2.0x and ~1,150 events/s.

A worker that finishes a message releases its slot and then sends ``NOTIFY tf_capacity,
'<schema>'``: the relay waits on that (and on new writes) instead of polling capped tenants;
it still checks them every ``CAPPED_WAIT`` seconds (backend/events/relay.py) in case a
notification was lost.

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
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from tenancy import keys

#: The PostgreSQL notification channel of released slots (payload: the tenant's schema).
CAPACITY_CHANNEL = "tf_capacity"

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


def signal(engine: Engine, schema: str) -> None:
    """Tell the relay that a slot of this tenant is free (after :func:`release`). Best effort:
    without it the relay finds the slot at its next periodic check."""
    with contextlib.suppress(DBAPIError), engine.connect() as conn:
        conn.execute(select(func.pg_notify(CAPACITY_CHANNEL, schema)))
        conn.commit()
