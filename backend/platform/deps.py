from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from backend.kit.errors import Problem
from tenancy.resolver import bearer_token


def require_operator(request: Request) -> str:
    """Operators authenticate with TENANTFLOW_PLATFORM_TOKEN as a bearer token."""
    settings = request.app.state.resources.settings
    expected = settings.platform_token.get_secret_value() if settings.platform_token else ""
    token = bearer_token(request.headers.get("authorization"))
    if not expected:
        raise Problem(
            401,
            "platform-disabled",
            "The platform API is disabled: set TENANTFLOW_PLATFORM_TOKEN.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(
            401,
            "invalid-operator-token",
            "A valid operator bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "platform-token"


Operator = Annotated[str, Depends(require_operator)]
