"""The current tenant: a contextvar set by the middleware or the Celery task wrapper."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenancy.registry import TenantRecord

_current: contextvars.ContextVar[TenantRecord | None] = contextvars.ContextVar(
    "tenantflow_tenant", default=None
)


class TenantNotBound(RuntimeError):
    """Tenant-scoped code ran without a tenant: a bug, never a fallback to some default."""


def current_tenant() -> TenantRecord | None:
    return _current.get()


def require_tenant() -> TenantRecord:
    """The bound tenant; raises TenantNotBound when none is bound."""
    tenant = _current.get()
    if tenant is None:
        raise TenantNotBound("no tenant is bound to this context")
    return tenant


@contextmanager
def bind_tenant(tenant: TenantRecord) -> Iterator[TenantRecord]:
    """Bind tenant for the duration of the block (nesting restores the outer binding)."""
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)
