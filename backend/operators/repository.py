"""All SQL of operators and their tokens (shared schema, no tenant binding needed)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.operators.models import Operator, OperatorToken

#: last_used_at is written at most this often per token, not on every request.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


class OperatorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, operator_id: uuid.UUID) -> Operator | None:
        return await self.session.get(Operator, operator_id)

    async def get_by_email(self, email: str) -> Operator | None:
        stmt = select(Operator).where(func.lower(Operator.email) == email.lower())
        return (await self.session.scalars(stmt)).one_or_none()

    async def add(self, operator: Operator) -> Operator:
        self.session.add(operator)
        await self.session.flush()
        await self.session.refresh(operator)
        return operator

    async def list_all(self) -> list[Operator]:
        stmt = select(Operator).order_by(Operator.created_at, Operator.id)
        return list(await self.session.scalars(stmt))

    async def add_token(self, token: OperatorToken) -> OperatorToken:
        self.session.add(token)
        await self.session.flush()
        await self.session.refresh(token)
        return token

    async def get_token(self, token_id: uuid.UUID) -> OperatorToken | None:
        return await self.session.get(OperatorToken, token_id)

    async def get_token_by_hash(self, token_hash: str) -> OperatorToken | None:
        stmt = select(OperatorToken).where(OperatorToken.token_hash == token_hash)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_tokens(
        self, operator_id: uuid.UUID | None = None
    ) -> list[tuple[OperatorToken, str]]:
        """Tokens with their operator's email, oldest first."""
        stmt = (
            select(OperatorToken, Operator.email)
            .join(Operator, Operator.id == OperatorToken.operator_id)
            .order_by(OperatorToken.created_at, OperatorToken.id)
        )
        if operator_id is not None:
            stmt = stmt.where(OperatorToken.operator_id == operator_id)
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    async def revoke_tokens_of(self, operator_id: uuid.UUID, now: dt.datetime) -> None:
        await self.session.execute(
            update(OperatorToken)
            .where(OperatorToken.operator_id == operator_id, OperatorToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def touch_token(self, token_id: uuid.UUID, now: dt.datetime) -> None:
        await self.session.execute(
            update(OperatorToken)
            .where(
                OperatorToken.id == token_id,
                or_(
                    OperatorToken.last_used_at.is_(None),
                    OperatorToken.last_used_at < now - TOUCH_INTERVAL,
                ),
            )
            .values(last_used_at=now)
        )
