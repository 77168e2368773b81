"""Resolve the tenant of every tenant route, refuse unknown, suspended or unmigrated ones.

A pure ASGI middleware (no BaseHTTPMiddleware): it costs one cached lookup per request and
binds the tenant contextvar for the whole request, including dependencies with yield.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette._utils import get_route_path
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.kit.errors import problem_response, unavailable_problem
from tenancy.context import bind_tenant
from tenancy.migrate import revisions_before
from tenancy.naming import SLUG_RE
from tenancy.registry import RegistryCache, TenantRecord
from tenancy.resolver import Resolution, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request's tenant is not served: an HTTP problem, or close code 4000 + status."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] | None = None


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
        authorization = headers.get("authorization")
        if scope["type"] == "websocket" and authorization is None:
            # Browsers cannot set headers on a WebSocket: the token may come as a query parameter.
            token = QueryParams(scope.get("query_string", b"")).get("access_token")
            authorization = f"Bearer {token}" if token else None
        found = resolve(
            headers.get("x-tenant"),
            headers.get("host"),
            authorization,
            base_domain=self.base_domain,
            token_tenant=self.token_tenant,
        )
        if found is None and scope["type"] == "websocket":
            # The token (and so the tenant) may arrive in the socket's first message: the route
            # admits the tenant with ``admit_token`` then, under the same checks as here.
            scope.setdefault("state", {})["admit_token"] = self.admit_token
            await self.app(scope, receive, send)
            return
        if found is None:
            await self._refuse(
                scope,
                receive,
                send,
                Refusal(
                    400,
                    "tenant-required",
                    "Name the tenant: X-Tenant header, a tenant subdomain, "
                    "or a token issued by the tenant.",
                ),
            )
            return
        admitted = await self.admit(found)
        if isinstance(admitted, Refusal):
            await self._refuse(scope, receive, send, admitted)
            return
        scope.setdefault("state", {})["tenant"] = admitted
        scope["state"]["tenant_source"] = found.source
        with bind_tenant(admitted):
            await self.app(scope, receive, send)

    async def admit(self, found: Resolution) -> TenantRecord | Refusal:
        """The tenant ``found`` names if it may be served now, else why not."""
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
            return Refusal(503, problem.code, problem.detail, problem.headers)
        if record is None or record.status == "deleting":
            label = found.slug or found.tenant_id
            return Refusal(404, "tenant-not-found", f"No tenant '{label}'.")
        if record.status == "suspended":
            return Refusal(
                403,
                "tenant-suspended",
                f"Tenant '{record.slug}' is suspended; contact the operator.",
            )
        if record.schema_revision is None or record.schema_revision in self.behind_head:
            return Refusal(
                503,
                "tenant-migrating",
                f"Tenant '{record.slug}' is being migrated to a new version; retry shortly.",
                {"Retry-After": "30"},
            )
        return record

    async def admit_token(self, token: str) -> TenantRecord | Refusal | None:
        """The tenant a token was issued by (None: the token names none), as ``admit`` does."""
        tenant_id = self.token_tenant(token)
        if tenant_id is None:
            return None
        return await self.admit(Resolution("token", tenant_id=tenant_id))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        if scope["type"] == "websocket":
            # Accept first: a close before the handshake reaches the client as a bare HTTP 403,
            # without the code and reason.
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send(
                    {
                        "type": "websocket.close",
                        "code": 4000 + refusal.status,
                        "reason": refusal.detail[:120],
                    }
                )
            return
        request = Request(scope, receive)
        response = problem_response(
            request, refusal.status, refusal.code, refusal.detail, headers=refusal.headers
        )
        await response(scope, receive, send)


def tenant_of(scope_or_request: Any) -> TenantRecord:
    state = getattr(scope_or_request, "state", None)
    return state.tenant  # type: ignore[no-any-return,union-attr]
