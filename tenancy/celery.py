"""Carry the tenant in Celery task headers and bind it before a tenant task runs.

``TenantTask`` takes the tenant from the context at send time (or ``tenant=`` explicitly), puts
its id in the ``tenant_id`` header and routes the message to the tenant's queue (its pinned
queue, else its partition). In the worker it loads the tenant from the registry and binds it
for the task's run; a message without the header, or for a tenant that is not active, fails.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import Task

from tenancy import keys
from tenancy.context import TenantNotBound, bind_tenant, current_tenant
from tenancy.registry import TenantRecord

HEADER = "tenant_id"
_CACHE_TTL = 2.0


class TenantInactive(RuntimeError):
    """The task's tenant is suspended or being deleted."""


class TenantTask(Task):  # type: ignore[misc]
    abstract = True
    #: Set by the worker set-up: tenant id -> record (None when unknown).
    tenant_loader: Callable[[uuid.UUID], TenantRecord | None] | None = None
    partitions: int = 4
    _cache: dict[uuid.UUID, tuple[float, TenantRecord | None]] = {}

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        tenant: TenantRecord | None = options.pop("tenant", None) or current_tenant()
        if tenant is None:
            raise TenantNotBound(f"{self.name} is a tenant task: send it with a tenant bound")
        headers = dict(options.pop("headers", None) or {})
        headers[HEADER] = str(tenant.id)
        options.setdefault("queue", keys.queue_for(tenant.id, self.partitions, tenant.queue))
        return super().apply_async(args, kwargs, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raw = _header(self.request)
        if not raw:
            raise TenantNotBound(f"{self.name} received without a {HEADER} header")
        tenant = self._load(uuid.UUID(str(raw)))
        if tenant is None:
            raise TenantNotBound(f"{self.name}: tenant {raw} does not exist")
        if tenant.status != "active":
            raise TenantInactive(f"{self.name}: tenant {tenant.slug} is {tenant.status}")
        with bind_tenant(tenant):
            return super().__call__(*args, **kwargs)

    def _load(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        now = time.monotonic()
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        if self.tenant_loader is None:
            raise RuntimeError("TenantTask.tenant_loader is not configured")
        record = type(self).tenant_loader(tenant_id)  # type: ignore[misc]
        self._cache[tenant_id] = (now + _CACHE_TTL, record)
        return record


def _header(request: Any) -> Any:
    value = getattr(request, HEADER, None)
    if value:
        return value
    headers = getattr(request, "headers", None) or {}
    return headers.get(HEADER)
