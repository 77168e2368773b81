"""Rate limits on tenant routes: a pure ASGI middleware inside the tenant middleware.

Why a middleware and not a route dependency: the concurrency slot must be released on every
exit path, client disconnects and errors in other middleware included, which only a
``try/finally`` around the whole call guarantees; and every /api/ request counts, those that
end in 404 or 422 too.

For each request under ``/api/`` of a resolved tenant, in one Redis script call
(backend/ratelimit/limiter.py):

- ``tenant``: every request of the tenant;
- ``user``: the caller, as the idempotency store names it (``user:<id>`` of a verified access
  token of this tenant, ``key:<hash>`` of an API key), or the client address without one;
- ``write``: the tenant's requests other than GET/HEAD/OPTIONS;
- ``auth``: requests to ``/api/v1/auth/`` from one client address (stricter);
- ``concurrency``: the tenant's requests in flight, when its plan or override sets a limit.

Responses carry ``RateLimit-Policy`` and ``RateLimit`` (IETF httpapi draft): every rate policy
of the request with its quota and window, and what is left of it and when its window ends. A
refusal is 429 problem+json with ``Retry-After``, the seconds until the refusing policy admits
a request again (the ``t`` of its ``RateLimit`` item). Policies in shadow mode refuse nothing:
their would-be refusals are counted and logged. Redis unavailable (or slower than
``ratelimit_redis_timeout_ms``): the request is refused with 503 if a policy that applies is
fail-closed, otherwise admitted unlimited; both are counted and logged.

Refusals are remembered in the process until the refusing policy admits again (the script
tells when: counts only grow and the window only slides, so until then every request on that
key would be refused too). A tenant far over its quota is then refused without any Redis call,
and its excess costs the others almost nothing; a change of the quota voids the memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.kit.errors import problem_response
from backend.kit.metrics import RATELIMIT_DECISIONS, RATELIMIT_REDIS_ERRORS
from backend.ratelimit.limiter import Check, Concurrency, Decision, Limiter, Outcome
from backend.ratelimit.policy import Limits, PolicyStore
from tenancy import keys

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_PREFIX = "/api/v1/auth/"
WINDOW_SECONDS = 60
#: Seconds between two log lines about Redis failures (one per request would flood the log).
LOG_EVERY = 10.0
#: Refusals remembered per process (the oldest go first beyond this).
REMEMBERED_REFUSALS = 100_000

CallerOf = Callable[[Scope, str], str | None]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def checks_for(scope: Scope, tenant_id: Any, limits: Limits, caller: str | None) -> list[Check]:
    """The rate policies of this request, keys under the tenant's hash tag."""
    address = _address(scope)
    prefix = keys.tenant_key(tenant_id, "rl")  # validated once; the parts below are ours
    policies = [
        ("tenant", f"{prefix}:tenant"),
        ("user", f"{prefix}:user:{_digest(caller or f'addr:{address}')}"),
    ]
    if scope["method"] not in SAFE_METHODS:
        policies.append(("write", f"{prefix}:write"))
    if scope["path"].startswith(AUTH_PREFIX):
        policies.append(("auth", f"{prefix}:auth:{_digest(address)}"))
    return [
        Check(name, key, limits.per_minute[name], WINDOW_SECONDS, name in limits.shadow)
        for name, key in policies
    ]


def header_values(decision: Decision) -> list[tuple[bytes, bytes]]:
    policy = ", ".join(
        f'"{o.check.policy}";q={o.check.quota};w={o.check.window_seconds}'
        for o in decision.outcomes
    )
    state = ", ".join(
        f'"{o.check.policy}";r={o.remaining};t={o.reset_seconds}' for o in decision.outcomes
    )
    return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", state.encode())]


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Callable[[], Limiter],
        store: Callable[[], PolicyStore],
        caller_of: CallerOf,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.store = store
        self.caller_of = caller_of
        self._logged_at = float("-inf")
        #: key -> (until, monotonic; the refusing outcome) of refused rate policies.
        self._refused: dict[str, tuple[float, Outcome]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("state", {}).get("tenant") if scope["type"] == "http" else None
        if tenant is None or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        limits = await self.store().limits(tenant.id, tenant.plan)
        if limits is None:
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization")
        caller = self.caller_of(scope, authorization) if authorization else None
        checks = checks_for(scope, tenant.id, limits, caller)
        concurrency = None
        if limits.concurrent_requests is not None:
            concurrency = Concurrency(
                keys.tenant_key(tenant.id, "rl", "inflight"),
                limits.concurrent_requests,
                "concurrency" in limits.shadow,
            )
        remembered = self._remembered(checks)
        if remembered is not None:
            RATELIMIT_DECISIONS.labels(remembered.check.policy, "refused").inc()
            await self._refuse(scope, receive, send, Decision(False, (remembered,)))
            return
        limiter = self.limiter()
        try:
            decision = await limiter.admit(checks, concurrency)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            await self._unavailable(scope, receive, send, checks, concurrency, limits, exc)
            return
        self._count(scope, tenant, decision)
        if not decision.admitted:
            self._remember(decision)
            await self._refuse(scope, receive, send, decision)
            return
        extra = header_values(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if decision.slot is not None and concurrency is not None:
                # Shielded: a cancelled request (client gone) still gives its slot back.
                await asyncio.shield(self._release(limiter, concurrency.key, decision.slot))

    def _remembered(self, checks: list[Check]) -> Outcome | None:
        """A refusal of one of these policies that still holds, as it stands now."""
        if not self._refused:
            return None
        now = time.monotonic()
        for check in checks:
            found = self._refused.get(check.key)
            if found is None:
                continue
            until, outcome = found
            if now < until and outcome.check == check:  # same quota, not shadow
                return replace(outcome, remaining=0, reset_ms=int((until - now) * 1000))
            del self._refused[check.key]
        return None

    def _remember(self, decision: Decision) -> None:
        now = time.monotonic()
        for outcome in decision.outcomes:
            if outcome.over and not outcome.check.shadow and outcome.reset_ms > 0:
                if len(self._refused) >= REMEMBERED_REFUSALS:
                    self._refused.pop(next(iter(self._refused)), None)
                self._refused[outcome.check.key] = (now + outcome.reset_ms / 1000, outcome)

    async def _release(self, limiter: Limiter, key: str, slot: str) -> None:
        try:
            await limiter.release(key, slot)
        except (redis.RedisError, OSError, TimeoutError) as exc:  # the slot goes stale later
            self._log("rate limits: could not release a concurrency slot: %s", exc)

    def _count(self, scope: Scope, tenant: Any, decision: Decision) -> None:
        for outcome in decision.outcomes:
            name = outcome.check.policy
            if not outcome.over:
                RATELIMIT_DECISIONS.labels(name, "admitted").inc()
            elif outcome.check.shadow:
                RATELIMIT_DECISIONS.labels(name, "shadow_refused").inc()
                log.warning(
                    "rate limits (shadow): tenant %s would be refused by policy %s on %s %s",
                    tenant.slug,
                    name,
                    scope["method"],
                    scope["path"],
                )
            else:
                RATELIMIT_DECISIONS.labels(name, "refused").inc()
        if decision.concurrency_over:
            shadow = decision.admitted and decision.slot is not None
            RATELIMIT_DECISIONS.labels(
                "concurrency", "shadow_refused" if shadow else "refused"
            ).inc()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, decision: Decision) -> None:
        refusing = [o for o in decision.outcomes if o.over and not o.check.shadow]
        headers = {k.decode(): v.decode() for k, v in header_values(decision)}
        if refusing:
            first = max(refusing, key=lambda o: o.reset_seconds)
            wait = max(1, first.reset_seconds)
            detail = (
                f"Too many requests: the '{first.check.policy}' limit allows "
                f"{first.check.quota} requests per {first.check.window_seconds} s. "
                f"Retry in {wait} s."
            )
            code, policy = "rate-limited", first.check.policy
        else:
            wait = 1
            detail = (
                f"Too many requests in flight for this tenant ({decision.in_flight}). "
                "Retry when one of them has finished."
            )
            code, policy = "too-many-concurrent-requests", "concurrency"
        headers["Retry-After"] = str(wait)
        response = problem_response(
            Request(scope, receive), 429, code, detail, headers=headers, policy=policy
        )
        await response(scope, receive, send)

    async def _unavailable(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        checks: list[Check],
        concurrency: Concurrency | None,
        limits: Limits,
        exc: BaseException,
    ) -> None:
        applied = [c.policy for c in checks if not c.shadow]
        if concurrency is not None and not concurrency.shadow:
            applied.append("concurrency")
        closed = [p for p in applied if p in limits.fail_closed]
        outcome = "closed" if closed else "open"
        RATELIMIT_REDIS_ERRORS.labels(outcome).inc()
        self._log(
            "rate limits: Redis unavailable (%s); request %s (%s)",
            exc or type(exc).__name__,
            "refused" if closed else "admitted",
            ", ".join(closed) + " fail closed" if closed else "every policy fails open",
        )
        if not closed:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            Request(scope, receive),
            503,
            "rate-limit-unavailable",
            "Rate limits cannot be checked right now and this route does not run unchecked. "
            "Retry shortly.",
            headers={"Retry-After": "1"},
        )
        await response(scope, receive, send)

    def _log(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.warning(message, *args)
