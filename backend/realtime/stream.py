"""The live feed protocol on one WebSocket: authenticate, replay from the outbox, then relay the
tenant's live channel, with heartbeats. Protocol and close codes: docs/events.md, "Live feed".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from backend.events.outbox import envelope
from backend.identity.permissions import allow, principal_of
from backend.identity.tokens import TokenService
from backend.kit.errors import Problem
from backend.kit.resources import Resources
from backend.realtime import repository
from backend.realtime.feed import Feed, RecentIds, subscribed
from tenancy.context import bind_tenant
from tenancy.db import tenant_session
from tenancy.middleware import Refusal
from tenancy.registry import TenantRecord

log = logging.getLogger(__name__)

ACTION = "events:read"
#: How long a socket without ``access_token`` may take to send its auth message.
AUTH_TIMEOUT = 10.0
MAX_AUTH_MESSAGE = 8192
#: How often, at most, the loop looks whether the client went away.
POLL_SECONDS = 1.0
#: The client must reload (its last event is unknown or too far back) before resuming.
GONE = 4410
#: Redis (or the database) failed: reconnect with last_event_id.
UNAVAILABLE = 1011


class Closing(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hello:
    token: str
    last_event_id: str | None


async def serve(ws: WebSocket) -> None:
    """Run one client's feed until it leaves; every failure ends in a close code, never a 500."""
    await ws.accept()
    try:
        await _serve(ws)
    except Closing as closing:
        await _close(ws, closing.code, closing.reason)
    except WebSocketDisconnect:
        pass
    except RedisError:
        log.warning("live feed: Redis unavailable", exc_info=True)
        await _close(ws, UNAVAILABLE, "Live feed unavailable; reconnect with last_event_id.")
    except Exception:
        if ws.client_state == WebSocketState.DISCONNECTED:
            log.debug("live feed: client left mid-send", exc_info=True)
            return
        log.exception("live feed failed")
        await _close(ws, UNAVAILABLE, "Live feed failed; reconnect with last_event_id.")


async def _serve(ws: WebSocket) -> None:
    resources: Resources = ws.app.state.resources
    hello = await _hello(ws)
    tenant = await _tenant(ws, hello.token)
    with bind_tenant(tenant):
        await _authorize(resources, ws.app.state.tokens, tenant, hello.token)
        async with subscribed(resources.redis, tenant.id) as feed:
            # Subscribed before reading the replay: an event published meanwhile waits in the
            # subscription and is dropped as a duplicate if the replay had it.
            replay = await _replay(resources, tenant, hello.last_event_id)
            await ws.send_json({"type": "ready"})
            await _pump(ws, feed, replay, resources.settings.stream_heartbeat_seconds)


async def _hello(ws: WebSocket) -> Hello:
    """The token and resume point: from the query, else from the first message."""
    token = ws.query_params.get("access_token")
    last_event_id = ws.query_params.get("last_event_id")
    if token:
        return Hello(token, last_event_id)
    try:
        message = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT)
    except TimeoutError:
        raise Closing(4401, f"No auth message within {AUTH_TIMEOUT:.0f} s.") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text") or ""
    try:
        data: Any = json.loads(text) if len(text) <= MAX_AUTH_MESSAGE else None
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or data.get("type") != "auth"
        or not isinstance(data.get("token"), str)
        or not data["token"]
    ):
        raise Closing(4401, 'The first message must be {"type": "auth", "token": "..."}.')
    resume = data.get("last_event_id")
    return Hello(data["token"], resume if isinstance(resume, str) else last_event_id)


async def _tenant(ws: WebSocket, token: str) -> TenantRecord:
    """The tenant bound by the middleware, else the one the token names (same checks)."""
    tenant: TenantRecord | None = getattr(ws.state, "tenant", None)
    if tenant is not None:
        return tenant
    admitted: TenantRecord | Refusal | None = await ws.state.admit_token(token)
    if admitted is None:
        raise Closing(4401, "The access token is invalid or expired.")
    if isinstance(admitted, Refusal):
        raise Closing(4000 + admitted.status, admitted.detail)
    return admitted


async def _authorize(
    resources: Resources, tokens: TokenService, tenant: TenantRecord, token: str
) -> None:
    """The checks of a REST request: the caller exists here, is active and may read events."""
    async with tenant_session(resources.engine, tenant) as session:
        try:
            allow(await principal_of(token, session, tokens), ACTION)
        except Problem as problem:
            raise Closing(4000 + problem.status, problem.detail) from None
        await session.commit()  # an API key's last_used_at


async def _replay(
    resources: Resources, tenant: TenantRecord, last_event_id: str | None
) -> list[dict[str, Any]]:
    """The tenant's events after ``last_event_id`` (none without one)."""
    if last_event_id is None:
        return []
    try:
        anchor_id = uuid.UUID(last_event_id)
    except ValueError:
        raise Closing(GONE, "Unknown last_event_id; reload and reconnect without it.") from None
    limit = resources.settings.stream_replay_max
    async with tenant_session(resources.engine, tenant) as session:
        # One snapshot for both reads of repository.after (published, then unpublished rows):
        # under READ COMMITTED each statement sees its own, and a relay commit in between
        # would move an event from the second set to the first after the first was read,
        # losing it from the replay while its live copy went out before this subscription.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        anchor = await repository.event(session, anchor_id)
        if anchor is None:
            raise Closing(GONE, "Unknown last_event_id; reload and reconnect without it.")
        rows = await repository.after(session, anchor, limit + 1)
    if len(rows) > limit:
        raise Closing(GONE, f"Too far behind (over {limit} events); reload and reconnect.")
    return [envelope(row, tenant.id) for row in rows]


async def _pump(ws: WebSocket, feed: Feed, replay: list[dict[str, Any]], heartbeat: float) -> None:
    """Send the replay, then live events and heartbeats until the client leaves."""
    sent = RecentIds(len(replay) + 1000)
    for doc in replay:
        sent.add(doc["id"])
        await ws.send_json({"type": "event", "event": doc})
    client = asyncio.create_task(_until_disconnect(ws))
    next_beat = time.monotonic() + heartbeat
    try:
        while not client.done():
            now = time.monotonic()
            if now >= next_beat:
                await ws.send_json({"type": "heartbeat"})
                next_beat = now + heartbeat
            live = await feed.next(min(POLL_SECONDS, next_beat - now))
            if live is not None and live.get("id") not in sent:
                sent.add(live["id"])
                await ws.send_json({"type": "event", "event": live})
    finally:
        client.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await client


async def _until_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with suppress(Exception):  # the client may be gone already
        await ws.close(code, reason[:120])
