"""Refresh tokens: opaque, stored hashed, rotated on every use, revoked by family.

A login starts a family. Each refresh marks the presented token used and issues its successor
in the same family. A used (superseded) token presented again means two parties hold the
family: every token of it is revoked and the caller must log in again (OAuth 2.0 Security BCP,
refresh token rotation).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import AuditEvent, RefreshToken, User
from backend.identity.secrets import digest, new_secret

PREFIX = "tfr_"


#: A superseded token presented again this soon after its use is a client's own race (two
#: tabs refreshing at once), not theft: it is refused without revoking the family.
REUSE_GRACE = dt.timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of presenting a refresh token."""

    user: User | None
    token: str | None
    reused: bool = False  # a superseded token: its family was just revoked
    user_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.token is not None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def start(
    session: AsyncSession, user_id: uuid.UUID, *, lifetime: int, event: dict[str, Any]
) -> str:
    """A new family's first token, inserted with the audit ``event`` (an ``audit.event_row``)
    of the login that starts it in one statement (a data-modifying CTE): one round trip."""
    token = PREFIX + new_secret()
    now = _now()
    row = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "family_id": uuid.uuid4(),
        "token_hash": digest(token),
        "created_at": now,
        "expires_at": now + dt.timedelta(seconds=lifetime),
    }
    # Core inserts on the tables: the ORM's bulk-insert path costs more than the statement.
    audit_cte = insert(cast(Table, AuditEvent.__table__)).values(event).cte("event")
    await session.execute(
        insert(cast(Table, RefreshToken.__table__)).values(row).add_cte(audit_cte)
    )
    return token


def issue(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    lifetime: int,
    family_id: uuid.UUID | None = None,
    expires_at: dt.datetime | None = None,
) -> str:
    """A new refresh token (added to the unit of work; returned once, never stored)."""
    token = PREFIX + new_secret()
    now = _now()
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            user_id=user_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=digest(token),
            created_at=now,
            expires_at=expires_at or now + dt.timedelta(seconds=lifetime),
        )
    )
    return token


async def _find(session: AsyncSession, token: str, *, lock: bool) -> RefreshToken | None:
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    query = select(RefreshToken).where(RefreshToken.token_hash == digest(token))
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def revoke_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """End every session of a user (deactivation, password reset)."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def rotate(session: AsyncSession, token: str, *, lifetime: int) -> Rotation:
    """Exchange a refresh token for its successor. The caller commits in every case: a
    reuse revokes the family even though the request is refused."""
    row = await _find(session, token, lock=True)
    now = _now()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return Rotation(None, None)
    if row.used_at is not None:
        if now - row.used_at < REUSE_GRACE:
            return Rotation(None, None)
        await revoke_family(session, row.family_id)
        return Rotation(None, None, reused=True, user_id=row.user_id, family_id=row.family_id)
    # A logout that raced an earlier rotation may have revoked the family after this row was
    # read: the family, not just this row, must be live.
    revoked = select(RefreshToken.id).where(
        RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_not(None)
    )
    if (await session.scalars(revoked.limit(1))).first() is not None:
        return Rotation(None, None)
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        return Rotation(None, None)
    row.used_at = now
    # Rows of this user that can never be used again are dead weight: drop them here.
    await session.execute(
        delete(RefreshToken).where(
            RefreshToken.user_id == user.id,
            RefreshToken.expires_at < now - dt.timedelta(days=1),
        )
    )
    # The successor inherits the expiry: a family lives at most one lifetime from its login,
    # however often it is refreshed.
    successor = issue(
        session, user.id, lifetime=lifetime, family_id=row.family_id, expires_at=row.expires_at
    )
    return Rotation(user, successor)


async def logout(session: AsyncSession, token: str) -> uuid.UUID | None:
    """Revoke the family of ``token``; the user id, or None for an unknown token."""
    # Locked like a rotation, so a logout racing a refresh waits for it and then revokes the
    # successor too.
    row = await _find(session, token, lock=True)
    if row is None:
        return None
    await revoke_family(session, row.family_id)
    return row.user_id
