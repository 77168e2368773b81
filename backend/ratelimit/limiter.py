"""All limits of a request in one atomic Redis script: one round trip per request.

Rate policies count with a sliding window counter: per policy one hash holding the current
fixed window's index and count and the previous window's count; a request is admitted while
``previous * (share of the previous window still inside the sliding window) + current`` stays
within the quota. That is O(1) per call whatever the quota (the moving-window log of
``limits``/slowapi keeps one entry per request, O(quota)), never admits more than the quota
within a fixed window, and smooths the burst a fixed window allows at its boundary.

One script call checks every limit of the request and counts it against all of them only if
none that enforces refuses: a refused request costs the caller nothing. Policies in shadow mode
are checked and reported, never refuse. The clock is Redis's (``TIME``), the same for every
API process; every key of a call carries the tenant's hash tag (``tenancy.keys``), so the
script is cluster-safe.

The concurrency limit (requests of the tenant in flight) is a sorted set of request ids scored
by start time, joined in the same script; leaving it (:meth:`Limiter.release`) is a second
command at the end of the request, only for tenants that have such a limit. Members older
than ``stale_seconds`` are dropped when counting: a process killed mid-request cannot hold a
slot for longer than that.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

# ARGV: n (rate keys), then 3 per rate key: quota, window ms, shadow (0/1); then, if a
# concurrency key follows the rate keys: limit, shadow, member, stale ms.
# Returns {admitted, then per rate key: over (0/1), remaining, reset ms; then, with a
# concurrency key: over, in flight}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local refused = false
local state = {}
for i = 1, n do
  local at = 2 + (i - 1) * 3
  local quota = tonumber(ARGV[at])
  local window = tonumber(ARGV[at + 1])
  local idx = math.floor(now / window)
  local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local w = tonumber(h[1] or '-1')
  local cur = tonumber(h[2] or '0')
  local prev = tonumber(h[3] or '0')
  if w ~= idx then
    if w == idx - 1 then prev = cur else prev = 0 end
    cur = 0
  end
  local elapsed = now - idx * window
  local used = prev * (window - elapsed) / window + cur
  local over = used + 1 > quota
  if over and ARGV[at + 2] == '0' then refused = true end
  state[i] = {quota, window, idx, cur, prev, used, elapsed, over}
end
local inflight = 0
local cover = false
if #KEYS > n then
  local at = 2 + n * 3
  local key = KEYS[n + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[at + 3]))
  inflight = redis.call('ZCARD', key)
  cover = inflight + 1 > tonumber(ARGV[at])
  if cover and ARGV[at + 1] == '0' then refused = true end
  if not refused then
    redis.call('ZADD', key, now, ARGV[at + 2])
    redis.call('PEXPIRE', key, tonumber(ARGV[at + 3]))
    inflight = inflight + 1
  end
end
local out = {refused and 0 or 1}
for i = 1, n do
  local s = state[i]
  local quota, window, idx, cur, prev, used, elapsed, over =
    s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]
  local spent = 0
  if not refused then
    redis.call('HSET', KEYS[i], 'w', idx, 'c', cur + 1, 'p', prev)
    redis.call('PEXPIRE', KEYS[i], window * 2)
    spent = 1
  end
  local reset = window - elapsed
  if over then
    if cur + 1 > quota then
      reset = reset + window * (1 - (quota - 1) / math.max(cur, 1))
    else
      reset = reset - window * (quota - 1 - cur) / prev
    end
  end
  out[#out + 1] = over and 1 or 0
  out[#out + 1] = math.max(0, math.floor(quota - used - spent))
  out[#out + 1] = math.max(0, math.ceil(reset))
end
if #KEYS > n then
  out[#out + 1] = cover and 1 or 0
  out[#out + 1] = inflight
end
return out
"""


@dataclass(frozen=True, slots=True)
class Check:
    """One rate policy of a request."""

    policy: str
    key: str
    quota: int
    window_seconds: int
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Concurrency:
    key: str
    limit: int
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one rate policy said: ``over`` means it would refuse (it did unless shadow).
    ``reset_ms``: until the current window ends, or, when over, until the policy admits a
    request again (if nothing else is admitted meanwhile)."""

    check: Check
    over: bool
    remaining: int
    reset_ms: int

    @property
    def reset_seconds(self) -> int:
        return max(0, math.ceil(self.reset_ms / 1000))


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    outcomes: tuple[Outcome, ...]
    #: Set when the request took a concurrency slot: the slot's member, to release.
    slot: str | None = None
    concurrency_over: bool = False
    in_flight: int = 0


class Limiter:
    def __init__(self, redis: aioredis.Redis, *, timeout_seconds: float, stale_seconds: float):
        self.redis = redis
        self.timeout = timeout_seconds
        self.stale_ms = int(stale_seconds * 1000)
        self._script = redis.register_script(_ADMIT)

    async def admit(self, checks: list[Check], concurrency: Concurrency | None = None) -> Decision:
        """Check and count the request against every limit, in one script call. Raises a
        ``redis.RedisError`` or ``TimeoutError`` (after ``timeout_seconds``) when Redis
        cannot answer; the caller applies the policies' failure modes."""
        keys = [c.key for c in checks]
        args: list[int | str] = [len(checks)]
        for c in checks:
            args += [c.quota, c.window_seconds * 1000, int(c.shadow)]
        member = None
        if concurrency is not None:
            member = uuid.uuid4().hex
            keys.append(concurrency.key)
            args += [concurrency.limit, int(concurrency.shadow), member, self.stale_ms]
        async with asyncio.timeout(self.timeout):
            raw = await self._script(keys=keys, args=args)
        values = [int(v) for v in raw]
        outcomes = tuple(
            Outcome(c, bool(values[1 + 3 * i]), values[2 + 3 * i], values[3 + 3 * i])
            for i, c in enumerate(checks)
        )
        admitted = bool(values[0])
        if concurrency is None:
            return Decision(admitted, outcomes)
        over, in_flight = bool(values[-2]), values[-1]
        return Decision(admitted, outcomes, member if admitted else None, over, in_flight)

    async def release(self, key: str, slot: str) -> None:
        """Leave the concurrency set (the request ended, however it ended)."""
        async with asyncio.timeout(self.timeout):
            await self.redis.zrem(key, slot)
