"""Helpers of the operator tests: operators and API tokens made through the service."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from backend.operators.repository import OperatorRepository
from backend.operators.service import OperatorService

T = TypeVar("T")
OPERATOR_PASSWORD = "operator-pass-0123"


async def run(app: Any, work: Callable[[OperatorService], Awaitable[T]]) -> T:
    """One use case in its own committed transaction, as the CLI runs it."""
    async with AsyncSession(app.state.resources.engine, expire_on_commit=False) as session:
        result = await work(OperatorService(OperatorRepository(session)))
        await session.commit()
        return result


async def make_operator(app: Any, prefix: str = "op") -> str:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@ops.example.com"
    await run(app, lambda s: s.create(email, OPERATOR_PASSWORD, name="Op"))
    return email


async def make_api_token(app: Any, email: str, days: int | None = None) -> tuple[uuid.UUID, str]:
    token, secret = await run(app, lambda s: s.create_token(email, "ci", days))
    return token.id, secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
