"""Which tenant a request is for: X-Tenant header, then Host subdomain, then the token's tid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Source = Literal["header", "subdomain", "token"]


@dataclass(frozen=True, slots=True)
class Resolution:
    source: Source
    slug: str | None = None
    tenant_id: str | None = None


def slug_from_host(host: str | None, base_domain: str | None) -> str | None:
    """``acme.example.com`` under base domain ``example.com`` -> ``acme`` (one label only)."""
    if not host or not base_domain:
        return None
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    hostname = hostname.lower().rstrip(".")
    suffix = "." + base_domain.lower().strip(".")
    if not hostname.endswith(suffix):
        return None
    label = hostname[: -len(suffix)]
    if not label or "." in label:
        return None
    return label


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def resolve(
    x_tenant: str | None,
    host: str | None,
    authorization: str | None,
    *,
    base_domain: str | None,
    token_tenant: Callable[[str], str | None],
) -> Resolution | None:
    """The first source that names a tenant, or None when none does."""
    if x_tenant is not None and x_tenant.strip():
        return Resolution("header", slug=x_tenant.strip())
    slug = slug_from_host(host, base_domain)
    if slug:
        return Resolution("subdomain", slug=slug)
    token = bearer_token(authorization)
    if token:
        tenant_id = token_tenant(token)
        if tenant_id:
            return Resolution("token", tenant_id=tenant_id)
    return None
