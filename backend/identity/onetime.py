"""Single-use tokens in Redis (invites, password resets), under the tenant's key prefix.

A token is 256 random bits; Redis holds only its SHA-256, as the key of a hash with the
token's data and a TTL. Redeeming is claim -> do the work -> complete:

- ``claim`` (one Lua script) marks the token taken, so of any number of parallel redemptions
  exactly one proceeds; the others see it busy.
- the caller does its work in PostgreSQL and commits;
- ``complete`` deletes the token. If the work failed, ``release`` un-marks it so the token is
  not lost to a database hiccup. A claim whose holder died expires after CLAIM_SECONDS.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from backend.identity.secrets import digest, new_secret
from tenancy import keys

Kind = Literal["invite", "reset"]
CLAIM_FIELD = "_claim"
CLAIM_SECONDS = 60

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local held = redis.call('HGET', KEYS[1], '_claim')
if held then
  local at = tonumber(string.match(held, ':(%d+)$'))
  if at and tonumber(ARGV[2]) - at < tonumber(ARGV[3]) then return 'busy' end
end
redis.call('HSET', KEYS[1], '_claim', ARGV[1] .. ':' .. ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], '_claim') == ARGV[1] then
  redis.call('HDEL', KEYS[1], '_claim')
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Claim:
    kind: Kind
    tenant_id: uuid.UUID
    key: str
    marker: str
    data: dict[str, str]


class Busy(Exception):
    """Another redemption of the same token is in progress."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def queue_issue(
    pipe: Any,
    kind: Kind,
    tenant_id: uuid.UUID,
    data: Mapping[str, str],
    *,
    ttl: int,
    token_id: str,
) -> str:
    """Queue the commands that store a new token on a (sync or async) Redis pipeline."""
    token = new_secret()
    key = keys.onetime_key(tenant_id, kind, digest(token).hex())
    index = keys.onetime_index_key(tenant_id, kind)
    pipe.hset(key, mapping={**data, "id": token_id})
    pipe.expire(key, ttl)
    pipe.hset(index, token_id, key)
    pipe.expire(index, ttl, gt=True)
    pipe.expire(index, ttl, nx=True)
    return token


class OneTimeTokens:
    def __init__(self, redis: aioredis.Redis, kind: Kind) -> None:
        self.redis = redis
        self.kind: Kind = kind

    def _key(self, tenant_id: uuid.UUID, token: str) -> str:
        return keys.onetime_key(tenant_id, self.kind, digest(token).hex())

    async def issue(
        self, tenant_id: uuid.UUID, data: Mapping[str, str], *, ttl: int, token_id: str
    ) -> str:
        """Store a new token with ``data`` for ``ttl`` seconds; returns the secret (once)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            token = queue_issue(pipe, self.kind, tenant_id, data, ttl=ttl, token_id=token_id)
            await pipe.execute()
        return token

    async def claim(self, tenant_id: uuid.UUID, token: str) -> Claim | None:
        """Take the token for redemption; None if it does not exist (any more).
        Raises Busy while another redemption holds it."""
        if not token or len(token) > 128:
            return None
        key = self._key(tenant_id, token)
        marker = f"{uuid.uuid4().hex}:{int(time.time())}"
        nonce, _, now = marker.partition(":")
        result = await self.redis.eval(_CLAIM, 1, key, nonce, now, CLAIM_SECONDS)  # type: ignore[misc]
        if result is None:
            return None
        if not isinstance(result, list):
            raise Busy(self.kind)
        flat = [_text(v) for v in result]
        data = {k: v for k, v in zip(flat[::2], flat[1::2], strict=True) if k != CLAIM_FIELD}
        return Claim(self.kind, tenant_id, key, marker, data)

    async def release(self, claim: Claim) -> None:
        await self.redis.eval(_RELEASE, 1, claim.key, claim.marker)  # type: ignore[misc]

    async def complete(self, claim: Claim) -> None:
        index = keys.onetime_index_key(claim.tenant_id, self.kind)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(claim.key)
            pipe.hdel(index, claim.data.get("id", ""))
            await pipe.execute()

    async def outstanding(self, tenant_id: uuid.UUID) -> list[dict[str, str]]:
        """Data of every live token of the tenant (expired ones are dropped from the index)."""
        index = keys.onetime_index_key(tenant_id, self.kind)
        entries = {_text(k): _text(v) for k, v in (await self.redis.hgetall(index)).items()}  # type: ignore[misc]
        if not entries:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in entries.values():
                pipe.hgetall(key)
            rows = await pipe.execute()
        found, stale = [], []
        for token_id, row in zip(entries, rows, strict=True):
            if row:
                data = {_text(k): _text(v) for k, v in row.items()}
                data.pop(CLAIM_FIELD, None)
                found.append(data)
            else:
                stale.append(token_id)
        if stale:
            await self.redis.hdel(index, *stale)  # type: ignore[misc]
        return found

    async def revoke(self, tenant_id: uuid.UUID, token_id: str) -> bool:
        """Delete a live token by its id; False when there is none."""
        index = keys.onetime_index_key(tenant_id, self.kind)
        key = await self.redis.hget(index, token_id)  # type: ignore[misc]
        if key is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_text(key))
            pipe.hdel(index, token_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)
