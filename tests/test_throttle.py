"""backend.kit.throttle against real Redis, and the throttle keys of tenancy.keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from backend.kit.throttle import Policy, Throttle, hash_tag
from tenancy import keys

FAST = Policy(max_failures=3, lockout_seconds=0.2, max_lockout_seconds=0.4)


@pytest.fixture
async def throttle(settings) -> AsyncIterator[Throttle]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield Throttle(client)
    await client.aclose()


def _account(tenant: uuid.UUID | None = None) -> str:
    return keys.throttle_key(tenant, "login", "account", uuid.uuid4().hex)


def test_throttle_keys_carry_a_hash_tag_and_no_raw_value():
    tid = uuid.uuid4()
    key = keys.throttle_key(tid, "login", "account", "Ann@Example.com")
    assert key.startswith(f"tf:{{{tid}}}:throttle:login:account:")
    assert "example" not in key.lower()
    platform = keys.throttle_key(None, "login", "address", "10.0.0.1")
    assert platform.startswith("tf:{platform}:throttle:login:address:")
    assert hash_tag(platform) == "platform" and hash_tag(key) == str(tid)
    for action, subject in (("log:in", "account"), ("login", "user"), ("", "account")):
        with pytest.raises(ValueError):
            keys.throttle_key(None, action, subject, "x")


def test_policy_refuses_nonsense():
    for bad in (
        {"max_failures": 0},
        {"lockout_seconds": 0},
        {"lockout_seconds": 10, "max_lockout_seconds": 5},
        {"forget_after_seconds": 0},
    ):
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]


async def test_locks_after_max_failures_and_backs_off(throttle):
    key = _account()
    assert await throttle.check([key]) is None
    assert await throttle.fail({key: FAST}) is None
    assert await throttle.fail({key: FAST}) is None
    assert await throttle.fail({key: FAST}) == 1  # 0.2 s, rounded up for Retry-After
    assert await throttle.check([key]) == 1
    await asyncio.sleep(0.25)
    assert await throttle.check([key]) is None  # the lock ended; the count did not
    await throttle.fail({key: FAST})  # 0.4 s now
    await asyncio.sleep(0.25)
    assert await throttle.check([key]) == 1  # still locked: the lock doubled
    await asyncio.sleep(0.2)
    assert await throttle.check([key]) is None


async def test_clear_forgets_failures(throttle):
    key = _account()
    for _ in range(3):
        await throttle.fail({key: FAST})
    assert await throttle.check([key]) is not None
    await throttle.clear([key])
    assert await throttle.check([key]) is None
    assert await throttle.fail({key: FAST}) is None  # counting starts again


async def test_keys_have_their_own_limits(throttle):
    account, address = _account(), keys.throttle_key(None, "login", "address", uuid.uuid4().hex)
    loose = Policy(max_failures=10, lockout_seconds=0.2, max_lockout_seconds=0.4)
    for _ in range(3):
        await throttle.fail({account: FAST, address: loose})
    assert await throttle.check([address]) is None
    assert await throttle.check([account, address]) == 1
    other = _account()
    for _ in range(7):
        assert await throttle.check([other, address]) is None
        await throttle.fail({other: Policy(max_failures=100), address: loose})
    assert await throttle.check([_account(), address]) == 1  # the address itself is locked


async def test_counters_expire(throttle, sync_redis):
    key = _account()
    await throttle.fail({key: Policy(forget_after_seconds=0.2)})
    assert 0 < sync_redis.pttl(key) <= 200
    locked = Policy(max_failures=1, lockout_seconds=5, forget_after_seconds=0.2)
    await throttle.fail({key: locked})
    assert sync_redis.pttl(key) > 4000  # kept at least as long as the lock


async def test_keys_of_one_call_share_a_slot(throttle):
    with pytest.raises(ValueError):
        await throttle.check([_account(uuid.uuid4()), _account(uuid.uuid4())])
    with pytest.raises(ValueError):
        await throttle.fail({"tf:platform:x": FAST})
    with pytest.raises(ValueError):
        await throttle.clear([])
    tid = uuid.uuid4()
    assert await throttle.check([_account(tid), _account(tid)]) is None
