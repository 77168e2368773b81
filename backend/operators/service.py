"""Operator use cases, shared by the platform API and the CLI. They flush, never commit."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from functools import cache

from sqlalchemy.exc import IntegrityError

from backend.identity.passwords import hash_password, password_helper, verify_and_update
from backend.kit.errors import Problem
from backend.operators.models import Operator, OperatorToken
from backend.operators.repository import OperatorRepository
from backend.operators.tokens import hash_api_token, is_api_token, new_api_token


def normalize_email(email: str) -> str:
    return email.strip().lower()


@cache
def _dummy_hash() -> str:
    """A hash nobody knows the password of: unknown emails pay the same argon2 verify."""
    return password_helper.hash(secrets.token_urlsafe(16))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OperatorService:
    def __init__(self, repository: OperatorRepository) -> None:
        self.repo = repository

    async def create(self, email: str, password: str, name: str = "") -> Operator:
        """Create an active operator; 409 when the email is taken."""
        email = normalize_email(email)
        if await self.repo.get_by_email(email) is not None:
            raise Problem(409, "operator-exists", f"An operator '{email}' already exists.")
        hashed = await hash_password(password)
        try:
            return await self.repo.add(
                Operator(email=email, name=name.strip(), hashed_password=hashed, is_active=True)
            )
        except IntegrityError as exc:  # a concurrent create won the unique index
            raise Problem(409, "operator-exists", f"An operator '{email}' already exists.") from exc

    async def list_all(self) -> list[Operator]:
        """Every operator, oldest first."""
        return await self.repo.list_all()

    async def get_by_email(self, email: str) -> Operator:
        """The operator with this email; 404 when there is none."""
        operator = await self.repo.get_by_email(normalize_email(email))
        if operator is None:
            raise Problem(404, "operator-not-found", f"No operator '{normalize_email(email)}'.")
        return operator

    async def deactivate(self, email: str) -> Operator:
        """Refuse the operator's logins and tokens from now on; its API tokens are revoked."""
        operator = await self.get_by_email(email)
        operator.is_active = False
        await self.repo.revoke_tokens_of(operator.id, _now())
        await self.repo.session.flush()
        return operator

    async def create_token(
        self, email: str, name: str, expires_in_days: int | None = None
    ) -> tuple[OperatorToken, str]:
        """A new API token and its secret (returned once, never stored)."""
        operator = await self.get_by_email(email)
        if not operator.is_active:
            raise Problem(409, "operator-inactive", f"Operator '{operator.email}' is deactivated.")
        fresh = new_api_token()
        expires_at = _now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
        token = await self.repo.add_token(
            OperatorToken(
                operator_id=operator.id,
                name=name.strip(),
                token_hash=fresh.token_hash,
                prefix=fresh.prefix,
                expires_at=expires_at,
            )
        )
        return token, fresh.secret

    async def list_tokens(self, email: str | None = None) -> list[tuple[OperatorToken, str]]:
        """API tokens with their operator's email, all operators or one."""
        operator_id = (await self.get_by_email(email)).id if email else None
        return await self.repo.list_tokens(operator_id)

    async def revoke_token(self, token_id: uuid.UUID) -> OperatorToken:
        """Revoke an API token (idempotent); 404 when there is none with this id."""
        token = await self.repo.get_token(token_id)
        if token is None:
            raise Problem(404, "operator-token-not-found", f"No operator token '{token_id}'.")
        if token.revoked_at is None:
            token.revoked_at = _now()
            await self.repo.session.flush()
        return token

    async def authenticate(self, email: str, password: str) -> Operator | None:
        """The active operator with these credentials, else None (same cost either way)."""
        operator = await self.repo.get_by_email(normalize_email(email))
        hashed = operator.hashed_password if operator is not None else _dummy_hash()
        verified, new_hash = await verify_and_update(password, hashed)
        if operator is None or not verified or not operator.is_active:
            return None
        if new_hash is not None:
            operator.hashed_password = new_hash
        operator.last_login_at = _now()
        return operator

    async def active(self, operator_id: uuid.UUID) -> Operator | None:
        """The operator if it still exists and is active (checked on every request)."""
        operator = await self.repo.get(operator_id)
        return operator if operator is not None and operator.is_active else None

    async def by_api_token(self, secret: str) -> Operator | None:
        """The active operator of a live (not revoked, not expired) API token, else None."""
        if not is_api_token(secret):
            return None
        token = await self.repo.get_token_by_hash(hash_api_token(secret))
        now = _now()
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= now:
            return None
        operator = await self.active(token.operator_id)
        if operator is not None:
            await self.repo.touch_token(token.id, now)
        return operator
