"""Password reset: forgot-password (always 202) and reset-password with a single-use token.

forgot-password does the same work for every address: it counts the request and queues a
job. The job (in the worker) looks the user up, stores a token (1 h) and mails the link, so
the response's body and timing say nothing about whether the address has an account.

A reset token is dead once the password changed by any route: it carries a fingerprint of
the password hash it was issued against. A successful reset ends every session of the user
and lifts a login lockout of the account.
"""

from __future__ import annotations

import hashlib
import uuid

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.identity import audit, sessions
from backend.identity.models import User
from backend.identity.onetime import Busy, OneTimeTokens
from backend.identity.passwords import hash_password
from backend.identity.users import COLS
from backend.kit.errors import Problem
from backend.kit.throttle import Throttle
from tenancy.keys import throttle_key
from tenancy.registry import TenantRecord


def fingerprint(hashed_password: str) -> str:
    return hashlib.sha256(hashed_password.encode()).hexdigest()[:32]


def _invalid() -> Problem:
    return Problem(
        400,
        "invalid-reset-token",
        "The reset link is unknown, expired or already used; ask for a new one.",
    )


async def reset_password(
    session: AsyncSession,
    redis_tokens: OneTimeTokens,
    throttle: Throttle,
    tenant: TenantRecord,
    token: str,
    password: str,
    request: Request,
) -> User | None:
    """Set the new password; None when the token is not (or no longer) good."""
    try:
        claim = await redis_tokens.claim(tenant.id, token)
    except Busy as exc:
        raise Problem(409, "reset-in-use", "This reset link is being used right now.") from exc
    if claim is None:
        return None
    try:
        hashed = await hash_password(password)
        query = select(User).where(COLS.id == uuid.UUID(claim.data["user_id"])).with_for_update()
        user = (await session.scalars(query)).first()
        good = (
            user is not None
            and user.is_active
            and fingerprint(user.hashed_password) == claim.data["fingerprint"]
        )
        if good and user is not None:
            user.hashed_password = hashed
            await sessions.revoke_user(session, user.id)
            audit.record(
                session,
                "password.reset",
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                request=request,
            )
            await session.commit()
    except BaseException:
        await redis_tokens.release(claim)
        raise
    await redis_tokens.complete(claim)
    if not good or user is None:
        return None
    await throttle.clear([throttle_key(tenant.id, "login", "account", user.email)])
    return user


def reset_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/reset-password#token={token}"
