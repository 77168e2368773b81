"""Tenant user administration: list, change role or active flag, deactivate.

Rules: only an owner may make an owner or change one; the last active owner can be neither
demoted nor deactivated (the active owners are locked while counted, so two owners demoting
each other at once cannot both succeed).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.events.types import MemberDeactivated, MemberUpdated
from backend.identity import api_keys, audit, sessions
from backend.identity.models import User
from backend.identity.permissions import Principal
from backend.identity.schemas import UserUpdate
from backend.kit.errors import Problem

# fastapi-users types some User attributes as plain values; the columns are typed as columns.
COLS = User.__table__.c


async def get(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise Problem(404, "user-not-found", f"No user {user_id}.")
    return user


async def list_page(
    session: AsyncSession, *, limit: int, after: tuple[object, uuid.UUID] | None
) -> list[User]:
    query = select(User)
    if after is not None:
        at, last_id = after
        query = query.where(
            (COLS.created_at > at) | ((COLS.created_at == at) & (COLS.id > last_id))
        )
    query = query.order_by(COLS.created_at, COLS.id).limit(limit)
    return list((await session.scalars(query)).all())


async def _lock_owners(session: AsyncSession) -> set[uuid.UUID]:
    """Lock the active owners' rows, always in id order, before any other user row: every
    change of users takes its locks in the same order, so two cannot deadlock."""
    owners = (
        select(COLS.id)
        .where(COLS.role == "owner", COLS.is_active.is_(True))
        .order_by(COLS.id)
        .with_for_update()
    )
    return set((await session.scalars(owners)).all())


async def update(
    session: AsyncSession,
    user_id: uuid.UUID,
    change: UserUpdate,
    *,
    caller: Principal,
    request: Request,
) -> User:
    owners = await _lock_owners(session)
    # Lock the row: concurrent changes of one user apply one after the other.
    user = (await session.scalars(select(User).where(COLS.id == user_id).with_for_update())).first()
    if user is None:
        raise Problem(404, "user-not-found", f"No user {user_id}.")
    fields = change.model_dump(exclude_unset=True)
    for key in ("role", "is_active"):
        if key in fields and fields[key] is None:
            raise Problem(422, "validation-error", f"'{key}' cannot be null")
    new_role = fields.get("role", user.role)
    new_active = fields.get("is_active", user.is_active)
    touches_owner = user.role == "owner" or new_role == "owner"
    if (
        touches_owner
        and caller.role != "owner"
        and (new_role != user.role or new_active != user.is_active)
    ):
        raise Problem(403, "owner-only", "Only an owner may make, change or deactivate an owner.")
    leaves_owners = user.role == "owner" and (new_role != "owner" or not new_active)
    if leaves_owners and user.is_active and not owners - {user.id}:
        raise Problem(409, "last-owner", "The tenant's last active owner cannot be removed.")
    actor = {"actor_type": caller.kind, "actor_id": caller.id, "request": request}
    # Deactivation is an event of its own; a role change or a reactivation is an update.
    changed: dict[str, Any] = {}
    if new_role != user.role:
        changed["role"] = new_role
    if new_active and not user.is_active:
        changed["is_active"] = True
    if changed:
        outbox.record(session, MemberUpdated(user_id=user.id, changes=changed))
    if user.is_active and not new_active:
        outbox.record(session, MemberDeactivated(user_id=user.id))
    if new_role != user.role:
        audit.record(
            session,
            "user.role_changed",
            target_type="user",
            target_id=user.id,
            details={"from": user.role, "to": new_role},
            **actor,
        )
        user.role = new_role
    if new_active != user.is_active:
        user.is_active = new_active
        if not new_active:
            await sessions.revoke_user(session, user.id)
            await api_keys.revoke_created_by(session, user.id)
        action = "user.reactivated" if new_active else "user.deactivated"
        audit.record(session, action, target_type="user", target_id=user.id, **actor)
    await session.flush()
    await session.refresh(user)
    return user


async def count_active_owners(session: AsyncSession) -> int:
    query = select(func.count()).where(COLS.role == "owner", COLS.is_active.is_(True))
    return int((await session.scalar(query)) or 0)
