"""Resolve the tenant of every tenant route, refuse unknown, suspended or unmigrated ones.

A pure ASGI middleware (no BaseHTTPMiddleware): it costs one cached lookup per request and
binds the tenant contextvar for the whole request, including dependencies with yield.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.kit.errors import problem_response, unavailable_problem
from tenancy.context import bind_tenant
from tenancy.migrate import revisions_before
from tenancy.naming import SLUG_RE
from tenancy.registry import RegistryCache, TenantRecord
from tenancy.resolver import resolve

log = logging.getLogger(__name__)


class TenantMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: Callable[[], RegistryCache],
        base_domain: str | None,
        token_tenant: Callable[[str], str | None],
        tenant_head: str,
        prefixes: tuple[str, ...] = ("/api/",),
    ) -> None:
        self.app = app
        # Revisions this code knows to be older than its head. A tenant recorded at one of them
        # (or at none) lacks tables the code uses. A revision this code does not know is newer:
        # the migrations of a release run before its code, so the previous release keeps
        # serving those tenants during a rolling deploy (migrations are expand-then-contract).
        self.tenant_head = tenant_head
        self.behind_head = frozenset(revisions_before("tenant", tenant_head))
        self.cache = cache
        self.base_domain = base_domain
        self.token_tenant = token_tenant
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The path as routes see it: without the root_path of a mount or a proxy prefix.
        if scope["type"] not in ("http", "websocket") or not get_route_path(scope).startswith(
            self.prefixes
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        found = resolve(
            headers.get("x-tenant"),
            headers.get("host"),
            headers.get("authorization"),
            base_domain=self.base_domain,
            token_tenant=self.token_tenant,
        )
        if found is None:
            await self._refuse(
                scope,
                receive,
                send,
                400,
                "tenant-required",
                "Name the tenant: X-Tenant header, a tenant subdomain, "
                "or a token issued by the tenant.",
            )
            return
        record: TenantRecord | None = None
        try:
            if found.slug is not None:
                if SLUG_RE.fullmatch(found.slug):
                    record = await self.cache().by_slug(found.slug)
            elif found.tenant_id is not None:
                record = await self.cache().by_id(found.tenant_id)
        except (OperationalError, InterfaceError, SATimeoutError) as exc:
            log.warning("tenant registry unavailable", exc_info=True)
            problem = unavailable_problem(exc)
            await self._refuse(
                scope, receive, send, 503, problem.code, problem.detail, headers=problem.headers
            )
            return
        if record is None or record.status == "deleting":
            label = found.slug or found.tenant_id
            await self._refuse(
                scope, receive, send, 404, "tenant-not-found", f"No tenant '{label}'."
            )
            return
        if record.status == "suspended":
            await self._refuse(
                scope,
                receive,
                send,
                403,
                "tenant-suspended",
                f"Tenant '{record.slug}' is suspended; contact the operator.",
            )
            return
        if record.schema_revision is None or record.schema_revision in self.behind_head:
            await self._refuse(
                scope,
                receive,
                send,
                503,
                "tenant-migrating",
                f"Tenant '{record.slug}' is being migrated to a new version; retry shortly.",
                headers={"Retry-After": "30"},
            )
            return
        scope.setdefault("state", {})["tenant"] = record
        scope["state"]["tenant_source"] = found.source
        with bind_tenant(record):
            await self.app(scope, receive, send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4000 + status, "reason": detail[:120]})
            return
        request = Request(scope, receive)
        response = problem_response(request, status, code, detail, headers=headers)
        await response(scope, receive, send)


def tenant_of(scope_or_request: Any) -> TenantRecord:
    state = getattr(scope_or_request, "state", None)
    return state.tenant  # type: ignore[no-any-return,union-attr]
