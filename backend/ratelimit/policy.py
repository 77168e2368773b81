"""Which limits apply to a tenant: its plan's, with the tenant's overrides on top.

Every API process keeps a copy of all plans and all overrides (a handful of rows: only tenants
an operator gave overrides have one) and reads it on each request without any I/O. The copy is
reloaded when it is older than ``ratelimit_refresh_seconds``, and at once when an operator
changes a plan or an override: the platform route publishes on ``CHANNEL`` and every process's
listener (backend/kit/resources.py) marks its copy stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.ratelimit.models import Plan, TenantLimits
from tenancy import keys

log = logging.getLogger(__name__)

#: Redis pub/sub channel: a plan or an override changed.
CHANNEL = keys.platform_key("limits", "changed")

#: The rate policies, each counting requests per minute: the whole tenant, one caller (user,
#: API key, or client address without a credential), the tenant's writes, and one client
#: address on the auth routes. ``concurrency`` counts the tenant's requests in flight.
RATE_POLICIES = ("tenant", "user", "write", "auth")
POLICIES = (*RATE_POLICIES, "concurrency")
#: Plan field of each rate policy.
FIELDS = {
    "tenant": "requests_per_minute",
    "user": "user_requests_per_minute",
    "write": "write_requests_per_minute",
    "auth": "auth_requests_per_minute",
}
OVERRIDABLE = (*FIELDS.values(), "concurrent_requests")


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective limits of one tenant."""

    per_minute: dict[str, int]
    concurrent_requests: int | None
    shadow: frozenset[str]
    fail_closed: frozenset[str]


def effective(plan: Any, override: Any | None) -> Limits:
    """The plan's limits with the override's non-null values on top (rows of ``plans`` and
    ``tenant_limits``, or anything with their attributes)."""

    def pick(field: str) -> int | None:
        value = getattr(override, field, None) if override is not None else None
        return value if value is not None else getattr(plan, field)  # type: ignore[no-any-return]

    per_minute = {policy: int(pick(field) or 0) for policy, field in FIELDS.items()}
    return Limits(
        per_minute,
        pick("concurrent_requests"),
        frozenset(plan.shadow or ()),
        frozenset(plan.fail_closed or ()),
    )


class PolicyStore:
    """The process's copy of plans and overrides (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh = refresh_seconds
        self._plans: dict[str, Any] = {}
        self._overrides: dict[uuid.UUID, Any] = {}
        self._computed: dict[tuple[uuid.UUID, str], Limits] = {}
        self._loaded_at = float("-inf")
        #: Changes announced, and the last one the copy has: while the copy is behind, requests
        #: wait for the reload.
        self._wanted = 1
        self._have = 0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        self._wanted += 1

    async def limits(self, tenant_id: uuid.UUID, plan: str) -> Limits | None:
        """The tenant's limits; None when no copy could ever be loaded (PostgreSQL away at
        start-up: requests are then not limited, and fail in their routes anyway).

        After a change (``invalidate``) the next request waits for the reload; a periodic
        refresh runs in the background while requests go on with the copy they have, so no
        request waits for it."""
        if self._have < self._wanted:
            await self._reload()
        elif time.monotonic() - self._loaded_at > self._refresh and (
            self._background is None or self._background.done()
        ):
            self._background = asyncio.get_running_loop().create_task(self._reload())
        key = (tenant_id, plan)
        found = self._computed.get(key)
        if found is None:
            row = self._plans.get(plan)
            if row is None:
                return None
            found = self._computed[key] = effective(row, self._overrides.get(tenant_id))
        return found

    async def _reload(self) -> None:
        async with self._lock:
            target = self._wanted
            if self._have >= target and time.monotonic() - self._loaded_at <= self._refresh:
                return  # another request reloaded it while this one waited
            try:
                async with self._engine.connect() as conn:
                    plans = (await conn.execute(select(Plan.__table__))).all()
                    overrides = (await conn.execute(select(TenantLimits.__table__))).all()
            except Exception as exc:
                # Keep serving the last copy, with no request waiting on PostgreSQL: the
                # background refresh tries again in a second.
                log.warning("rate limits: could not reload plans and overrides: %s", exc)
                self._loaded_at = time.monotonic() - self._refresh + 1.0
                self._have = target
                return
            self._plans = {row.name: row for row in plans}
            self._overrides = {row.tenant_id: row for row in overrides}
            self._computed = {}
            self._loaded_at = time.monotonic()
            self._have = target
