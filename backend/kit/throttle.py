"""Failure counters with exponential lockout (brute-force protection), kept in Redis.

A caller counts failures per key, typically one key for the account and one for the client
address (``tenancy.keys.throttle_key``)::

    limits = {account_key: ACCOUNT_POLICY, address_key: ADDRESS_POLICY}
    throttle = Throttle(redis)
    if (wait := await throttle.check(limits)) is not None:
        raise Problem(429, ..., headers={"Retry-After": str(wait)})
    if not ok:
        await throttle.fail(limits)
    else:
        await throttle.clear([account_key])  # never the address: one good login must not
                                             # reset what an attacker spent on other accounts

Once a key has ``max_failures`` failures it is locked for ``lockout_seconds``; every further
failure after the lock ends doubles the lock, up to ``max_lockout_seconds``. Failures are
forgotten ``forget_after_seconds`` after the last one (or when the lock ends, if later).

Each call is one Lua script, so counting and expiry are atomic and the clock is Redis's
(``TIME``), the same for every API process. All keys of a call must share a Redis Cluster hash
tag (one tenant's, or ``{platform}``), which keeps the scripts cluster-safe. Redis errors are
not swallowed: a caller that cannot count must fail closed (the API maps them to 503).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from backend.config import Settings
from backend.kit.errors import Problem
from tenancy import keys

# Returns {the longest remaining lock of KEYS in ms (0 when none is locked), how many of KEYS
# hold failures}.
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local counted = 0
for _, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'until', 'n')
  local locked_until = tonumber(state[1] or '0')
  if locked_until - now > wait then wait = locked_until - now end
  if state[2] then counted = counted + 1 end
end
return {wait, counted}
"""

# ARGV holds four numbers per key: max failures, first lockout ms, max lockout ms, forget ms.
# Counts one failure on every key; returns the longest lock this failure started, in ms.
_FAIL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 4
  local limit = tonumber(ARGV[at + 1])
  local lockout = tonumber(ARGV[at + 2])
  local cap = tonumber(ARGV[at + 3])
  local ttl = tonumber(ARGV[at + 4])
  local n = redis.call('HINCRBY', key, 'n', 1)
  if n >= limit then
    local lock = math.floor(math.min(lockout * 2 ^ (n - limit), cap))
    redis.call('HSET', key, 'until', string.format('%d', now + lock))
    if lock > wait then wait = lock end
    if lock > ttl then ttl = lock end
  end
  redis.call('PEXPIRE', key, ttl)
end
return wait
"""


@dataclass(frozen=True, slots=True)
class Policy:
    """How many failures a key may have, and how long it is locked after that."""

    max_failures: int = 5
    lockout_seconds: float = 30.0
    max_lockout_seconds: float = 900.0
    forget_after_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be >= 1")
        if not 0 < self.lockout_seconds <= self.max_lockout_seconds:
            raise ValueError("need 0 < lockout_seconds <= max_lockout_seconds")
        if self.forget_after_seconds <= 0:
            raise ValueError("forget_after_seconds must be > 0")

    def args(self) -> list[int]:
        return [
            self.max_failures,
            _ms(self.lockout_seconds),
            _ms(self.max_lockout_seconds),
            _ms(self.forget_after_seconds),
        ]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _seconds(ms: int) -> int | None:
    """A Retry-After value: whole seconds, rounded up; None when nothing is locked."""
    return math.ceil(ms / 1000) if ms > 0 else None


def hash_tag(key: str) -> str:
    """The Redis Cluster hash tag of a key (the text between the first braces)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start < 0 or end <= start + 1:
        raise ValueError(f"throttle key without a hash tag: {key!r}")
    return key[start + 1 : end]


def _same_slot(keys: list[str]) -> list[str]:
    if not keys:
        raise ValueError("no throttle keys given")
    if len({hash_tag(k) for k in keys}) != 1:
        raise ValueError("throttle keys of one call must share a hash tag")
    return keys


class Throttle:
    """check / fail / clear on a set of failure counters (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._check = redis.register_script(_CHECK)
        self._fail = redis.register_script(_FAIL)

    async def check(self, keys: Iterable[str]) -> int | None:
        """Seconds until every key is unlocked, or None when none is locked."""
        return (await self.probe(keys))[0]

    async def probe(self, keys: Iterable[str]) -> tuple[int | None, bool]:
        """(what ``check`` returns, whether any of the keys holds failures at all)."""
        waited, counted = await self._check(keys=_same_slot(list(keys)))
        return _seconds(int(waited)), int(counted) > 0

    async def fail(self, limits: Mapping[str, Policy]) -> int | None:
        """Count one failure on every key; seconds of the lock it started, if any."""
        keys = _same_slot(list(limits))
        args = [a for key in keys for a in limits[key].args()]
        started = await self._fail(keys=keys, args=args)
        return _seconds(int(started))

    async def clear(self, keys: Iterable[str]) -> None:
        """Forget the failures of these keys (after a success)."""
        await self._redis.delete(*_same_slot(list(keys)))


def login_policy(settings: Settings, max_failures: int) -> Policy:
    return Policy(
        max_failures=max_failures,
        lockout_seconds=settings.login_lockout_seconds,
        max_lockout_seconds=settings.login_max_lockout_seconds,
        # Remember failures well past the longest lock, or a locked account would start
        # afresh with max_failures free guesses each time its lock ended.
        forget_after_seconds=max(3600.0, 4 * settings.login_max_lockout_seconds),
    )


class LoginGuard:
    """The failure counters of one login attempt: the account's (under the tenant's hash tag,
    or the platform's for operators) and the client address's, counted platform-wide so an
    address gets one budget, not one per tenant. The two live in different hash slots, so
    they are two script calls, run concurrently."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        tenant_id: uuid.UUID | None,
        action: str,
        account: str,
        address: str,
    ) -> None:
        self.throttle = Throttle(redis)
        self._account_counted = True  # until check() finds out
        self.account_key = keys.throttle_key(tenant_id, action, "account", account)
        self.account = {self.account_key: login_policy(settings, settings.login_max_failures)}
        address_key = keys.throttle_key(None, action, "address", address)
        self.address = {
            address_key: login_policy(settings, settings.login_max_failures_per_address)
        }

    async def check(self) -> int | None:
        """Seconds until the attempt may be made, or None when neither counter is locked."""
        (account_wait, self._account_counted), address_wait = await asyncio.gather(
            self.throttle.probe(self.account), self.throttle.check(self.address)
        )
        locked = [w for w in (account_wait, address_wait) if w is not None]
        return max(locked) if locked else None

    async def fail(self) -> int | None:
        """Count the failure on both; seconds of a lock it started, if any."""
        started = await asyncio.gather(
            self.throttle.fail(self.account), self.throttle.fail(self.address)
        )
        locks = [w for w in started if w is not None]
        return max(locks) if locks else None

    async def succeed(self) -> None:
        """Forget the account's failures; never the address's (a good login must not reset
        what was spent guessing other accounts). Nothing to do (no round trip) when the check
        found none."""
        if self._account_counted:
            await self.throttle.clear([self.account_key])


def too_many(wait: int, what: str, code: str = "too-many-attempts") -> Problem:
    """The 429 problem of a locked counter, with Retry-After."""
    return Problem(
        429,
        code,
        f"Too many {what}; retry in {wait} s.",
        headers={"Retry-After": str(wait)},
        retry_after=wait,
    )


def too_many_logins(wait: int) -> Problem:
    return too_many(wait, "failed logins for this account or address", "too-many-login-failures")
