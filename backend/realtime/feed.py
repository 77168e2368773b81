"""One socket's subscription to its tenant's live channel (redis.asyncio pub/sub)."""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from backend.events.relay import live_channel

#: How long the subscription's confirmation may take before Redis counts as away.
SUBSCRIBE_TIMEOUT = 5.0


class FeedLost(RedisError):
    """The subscription broke (or silently reconnected, missing what was published meanwhile)."""


class Feed:
    def __init__(self, pubsub: aioredis.client.PubSub) -> None:
        self.pubsub = pubsub

    async def confirm(self) -> None:
        """Wait until Redis has the subscription: what is published from then on reaches us."""
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while time.monotonic() < deadline:
            message = await self.pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise FeedLost("no subscription confirmation from Redis")

    async def next(self, wait: float) -> dict[str, Any] | None:
        """The next envelope published within ``wait`` seconds, or None."""
        message = await self.pubsub.get_message(timeout=max(wait, 0.0))
        if message is None:
            return None
        if message["type"] == "subscribe":
            # redis-py reconnected and subscribed again: events published in between are lost
            # to this socket. Closing makes the client resume from its last event id.
            raise FeedLost("the subscription was re-established")
        if message["type"] != "message":
            return None
        envelope: dict[str, Any] = json.loads(message["data"])
        return envelope


@asynccontextmanager
async def subscribed(redis: aioredis.Redis, tenant_id: uuid.UUID) -> AsyncIterator[Feed]:
    """A confirmed subscription to the tenant's live channel, dropped on exit."""
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(live_channel(tenant_id))
        feed = Feed(pubsub)
        await feed.confirm()
        yield feed
    finally:
        with suppress(Exception):  # Redis may be the reason we are leaving
            await pubsub.unsubscribe()
        with suppress(Exception):
            await pubsub.aclose()


class RecentIds:
    """The ids of the last ``capacity`` events sent on a socket (a replayed event and its live
    copy, or the relay's at-least-once repeats, are sent once)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
