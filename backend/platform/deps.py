"""Who is calling /platform/v1: an operator (access or API token) or the bootstrap token."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.errors import Problem
from backend.operators.repository import OperatorRepository
from backend.operators.service import OperatorService
from backend.operators.tokens import OperatorTokenService, is_api_token
from tenancy.resolver import bearer_token


@dataclass(frozen=True, slots=True)
class OperatorPrincipal:
    """The caller of a platform route; no operator row behind the bootstrap token."""

    via: Literal["platform-token", "access-token", "api-token"]
    operator_id: uuid.UUID | None = None
    email: str | None = None

    @property
    def actor(self) -> str:
        """Who an audit trail names for this caller's changes."""
        return self.email or self.via


def _refused(detail: str) -> Problem:
    return Problem(401, "invalid-operator-token", detail, headers={"WWW-Authenticate": "Bearer"})


async def require_operator(request: Request) -> OperatorPrincipal:
    """Accept an operator access token, an operator API token (tfo_...) or
    TENANTFLOW_PLATFORM_TOKEN as a bearer token; anything else is 401."""
    settings = request.app.state.resources.settings
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise _refused("A bearer token is required: an operator access or API token.")
    expected = settings.platform_token.get_secret_value() if settings.platform_token else ""
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return OperatorPrincipal("platform-token")
    async with AsyncSession(request.app.state.resources.engine, expire_on_commit=False) as session:
        service = OperatorService(OperatorRepository(session))
        if is_api_token(token):
            operator = await service.by_api_token(token)
            via: Literal["access-token", "api-token"] = "api-token"
        else:
            tokens: OperatorTokenService = request.app.state.operator_tokens
            operator_id = tokens.decode(token)
            operator = await service.active(operator_id) if operator_id else None
            via = "access-token"
        if operator is None:
            raise _refused(
                "The token is not a valid operator token: unknown, expired, revoked, "
                "or its operator is deactivated."
            )
        await session.commit()  # last_used_at of an API token
    return OperatorPrincipal(via, operator.id, operator.email)


Operator = Annotated[OperatorPrincipal, Depends(require_operator)]
