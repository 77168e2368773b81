"""Tenant API keys for machine clients: ``tfk_<tenant id hex>_<secret>``, stored as SHA-256.

The tenant id in the key lets tenant resolution find the tenant from the key alone; the secret
(256 bits) is what authenticates. A key of tenant A presented at tenant B is looked up in B's
schema and not found.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import ApiKey, User
from backend.identity.secrets import digest, new_secret

PREFIX = "tfk_"
USERS = User.__table__.c
#: How stale last_used_at may get before a request writes it again.
TOUCH_INTERVAL = dt.timedelta(minutes=5)


def is_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def make_key(tenant_id: uuid.UUID) -> str:
    return f"{PREFIX}{tenant_id.hex}_{new_secret()}"


def tenant_of_key(token: str) -> str | None:
    """The tenant id a key names (not proof of anything: the secret is checked later)."""
    if not is_api_key(token):
        return None
    tenant_hex, _, secret = token[len(PREFIX) :].partition("_")
    if len(tenant_hex) != 32 or not secret:
        return None
    try:
        return str(uuid.UUID(hex=tenant_hex))
    except ValueError:
        return None


async def find_usable(session: AsyncSession, token: str) -> tuple[ApiKey, str] | None:
    """The key ``token`` is and its creator's current role, if the key exists here, is neither
    revoked nor expired, and its creator is an active user."""
    if len(token) > 128 or tenant_of_key(token) is None:
        return None
    query = (
        select(ApiKey, USERS.role)
        .join(User, USERS.id == ApiKey.created_by)
        .where(ApiKey.key_hash == digest(token), USERS.is_active.is_(True))
    )
    row = (await session.execute(query)).first()
    now = dt.datetime.now(dt.UTC)
    if row is None:
        return None
    key, creator_role = row
    if key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if key.last_used_at is None or now - key.last_used_at > TOUCH_INTERVAL:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return key, creator_role


async def revoke_created_by(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Revoke every key a user made (on deactivation)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )


def create(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    role: str,
    expires_at: dt.datetime | None,
    created_by: uuid.UUID | None,
) -> tuple[ApiKey, str]:
    secret = make_key(tenant_id)
    key = ApiKey(
        id=uuid.uuid4(),
        name=name,
        role=role,
        prefix=secret[len(PREFIX) + 33 :][:8],
        key_hash=digest(secret),
        created_by=created_by,
        created_at=dt.datetime.now(dt.UTC),
        expires_at=expires_at,
    )
    session.add(key)
    return key, secret


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(1000)
    return list((await session.scalars(query)).all())


async def revoke(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    key = await session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = dt.datetime.now(dt.UTC)
    return key
