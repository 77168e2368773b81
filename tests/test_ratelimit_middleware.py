"""The rate-limit middleware around a small app, against real Redis: the concurrency slot is
given back on every exit path, and Redis away or slow applies each policy's failure mode
without holding the request."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from backend.ratelimit.limiter import Limiter
from backend.ratelimit.middleware import RateLimitMiddleware
from backend.ratelimit.policy import Limits
from tests.conftest import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Store:
    """The limits the middleware reads, set by each test (the real store reads PostgreSQL;
    test_ratelimit.py covers it)."""

    def __init__(self, limits: Limits) -> None:
        self.value = limits

    async def limits(self, tenant_id: uuid.UUID, plan: str) -> Limits:
        return self.value


def limits(
    per_minute: int = 1000,
    concurrent: int | None = None,
    shadow: tuple[str, ...] = (),
    fail_closed: tuple[str, ...] = (),
) -> Limits:
    return Limits(
        {"tenant": per_minute, "user": per_minute, "write": per_minute, "auth": per_minute},
        concurrent,
        frozenset(shadow),
        frozenset(fail_closed),
    )


class Harness:
    def __init__(self, redis: aioredis.Redis, timeout: float = 0.5) -> None:
        self.tenant = SimpleNamespace(id=uuid.uuid4(), plan="free", slug="harness")
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.store = Store(limits())
        self.limiter = Limiter(redis, timeout_seconds=timeout, stale_seconds=300)

        async def slow(request: Request) -> PlainTextResponse:
            self.started.set()
            await self.release.wait()
            return PlainTextResponse("slow")

        async def fast(request: Request) -> PlainTextResponse:
            return PlainTextResponse("fast")

        async def boom(request: Request) -> PlainTextResponse:
            raise RuntimeError("handler failed")

        inner = Starlette(
            routes=[
                Route("/api/v1/slow", slow),
                Route("/api/v1/fast", fast),
                Route("/api/v1/auth/login", fast, methods=["POST"]),
                Route("/api/v1/boom", boom),
            ]
        )
        limited = RateLimitMiddleware(
            inner,
            limiter=lambda: self.limiter,
            store=lambda: self.store,  # type: ignore[arg-type,return-value]
            caller_of=lambda scope, credential: None,
        )

        async def with_tenant(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("state", {})["tenant"] = self.tenant
            await limited(scope, receive, send)

        self.app = with_tenant
        self.inflight_key = f"tf:{{{self.tenant.id}}}:rl:inflight"

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://api.local")


@pytest.fixture
async def redis(settings: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


async def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(0.02)
    return await predicate()


async def test_the_concurrency_limit_refuses_while_full_and_frees_the_slot_after(
    redis: aioredis.Redis,
) -> None:
    harness = Harness(redis)
    harness.store.value = limits(concurrent=1)
    async with harness.client() as client:
        first = asyncio.create_task(client.get("/api/v1/slow"))
        await asyncio.wait_for(harness.started.wait(), 10)
        assert await redis.zcard(harness.inflight_key) == 1
        refused = await client.get("/api/v1/fast")
        body = assert_problem(refused, 429, "too-many-concurrent-requests")
        assert body["policy"] == "concurrency" and refused.headers["Retry-After"] == "1"
        harness.release.set()
        assert (await first).status_code == 200
        assert await redis.zcard(harness.inflight_key) == 0
        assert (await client.get("/api/v1/fast")).status_code == 200


async def test_a_failing_handler_gives_its_slot_back(redis: aioredis.Redis) -> None:
    harness = Harness(redis)
    harness.store.value = limits(concurrent=1)
    async with harness.client() as client:
        assert (await client.get("/api/v1/boom")).status_code == 500
        assert await redis.zcard(harness.inflight_key) == 0
        assert (await client.get("/api/v1/fast")).status_code == 200


async def test_a_cancelled_request_gives_its_slot_back(redis: aioredis.Redis) -> None:
    """A client that goes away cancels the request's task: the slot is still released."""
    harness = Harness(redis)
    harness.store.value = limits(concurrent=1)
    async with harness.client() as client:
        request = asyncio.create_task(client.get("/api/v1/slow"))
        await asyncio.wait_for(harness.started.wait(), 10)
        assert await redis.zcard(harness.inflight_key) == 1
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request

        async def emptied() -> bool:
            return await redis.zcard(harness.inflight_key) == 0

        assert await wait_for(emptied)
        assert (await client.get("/api/v1/fast")).status_code == 200


async def test_a_slot_left_by_a_killed_process_goes_stale(redis: aioredis.Redis) -> None:
    harness = Harness(redis)
    harness.store.value = limits(concurrent=1)
    server_now = (await redis.time())[0]
    await redis.zadd(harness.inflight_key, {"killed-process": (server_now - 301) * 1000})
    async with harness.client() as client:
        assert (await client.get("/api/v1/fast")).status_code == 200
    assert await redis.zcard(harness.inflight_key) == 0


async def test_concurrency_in_shadow_mode_admits(redis: aioredis.Redis) -> None:
    harness = Harness(redis)
    harness.store.value = limits(concurrent=1, shadow=("concurrency",))
    async with harness.client() as client:
        first = asyncio.create_task(client.get("/api/v1/slow"))
        await asyncio.wait_for(harness.started.wait(), 10)
        assert (await client.get("/api/v1/fast")).status_code == 200
        harness.release.set()
        assert (await first).status_code == 200
    assert await redis.zcard(harness.inflight_key) == 0


def _redis_errors(outcome: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "tenantflow_ratelimit_redis_errors_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_redis_away_fails_open_or_closed_as_each_policy_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    harness = Harness(gone)
    harness.store.value = limits(per_minute=1, fail_closed=("auth",))
    before_open, before_closed = _redis_errors("open"), _redis_errors("closed")
    async with harness.client() as client:
        with caplog.at_level("WARNING", logger="backend.ratelimit.middleware"):
            admitted = await client.get("/api/v1/fast")
        assert admitted.status_code == 200 and "RateLimit" not in admitted.headers
        assert "Redis unavailable" in caplog.text
        refused = await client.post("/api/v1/auth/login")
        assert_problem(refused, 503, "rate-limit-unavailable")
        assert refused.headers["Retry-After"] == "1"
    assert _redis_errors("open") - before_open == 1
    assert _redis_errors("closed") - before_closed == 1
    await gone.aclose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


async def test_a_hung_redis_does_not_hold_requests(silent_server: int) -> None:
    """The client's own socket timeout is 30 s; the limiter gives up after its 0.1 s."""
    hung = aioredis.Redis(host="127.0.0.1", port=silent_server, socket_timeout=30)
    harness = Harness(hung, timeout=0.1)
    harness.store.value = limits(fail_closed=("write",))
    async with harness.client() as client:
        started = time.monotonic()
        admitted = await client.get("/api/v1/fast")
        refused = await client.post("/api/v1/auth/login")  # a write: fail closed
        elapsed = time.monotonic() - started
    assert admitted.status_code == 200
    assert_problem(refused, 503, "rate-limit-unavailable")
    assert elapsed < 10, f"requests were held {elapsed:.1f} s by a hung Redis"
    await hung.aclose()


async def test_a_refusal_is_remembered_until_the_policy_admits_again(
    redis: aioredis.Redis,
) -> None:
    """Refused again without asking Redis (here: Redis gone), until the quota changes."""
    harness = Harness(redis)
    harness.store.value = limits(per_minute=1)
    async with harness.client() as client:
        assert (await client.get("/api/v1/fast")).status_code == 200
        first = await client.get("/api/v1/fast")
        assert_problem(first, 429, "rate-limited")
        harness.limiter = Limiter(
            aioredis.Redis(host="127.0.0.1", port=1), timeout_seconds=0.5, stale_seconds=300
        )
        again = await client.get("/api/v1/fast")
        body = assert_problem(again, 429, "rate-limited")
        assert body["policy"] in ("tenant", "user")
        assert 1 <= int(again.headers["Retry-After"]) <= int(first.headers["Retry-After"])
        assert '";r=0;t=' in again.headers["RateLimit"]
        harness.store.value = limits(per_minute=5)  # a new quota: ask Redis (gone: fail open)
        assert (await client.get("/api/v1/fast")).status_code == 200
