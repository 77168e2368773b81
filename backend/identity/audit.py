"""Security events per tenant: recorded with the change they describe, listed by admins.

``record`` adds the event to the caller's unit of work, so it commits (or not) with the change.
A route that refuses a request but must keep its event (a failed login) commits it itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, get_args

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import AuditEvent
from backend.kit.pagination import decode_keyset_cursor, encode_keyset_cursor

AuditAction = Literal[
    "login.succeeded",
    "login.failed",
    "login.locked",
    "logout",
    "refresh.reused",
    "user.role_changed",
    "user.deactivated",
    "user.reactivated",
    "api_key.created",
    "api_key.revoked",
    "invite.sent",
    "invite.accepted",
    "invite.revoked",
    "password.reset_requested",
    "password.reset",
]
ACTIONS: tuple[str, ...] = get_args(AuditAction)


def client_ip(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return request.client.host[:64]


def event(
    action: str,
    *,
    actor_type: str = "user",
    actor_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: Any = None,
    request: Request | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A new event (not yet added to any session)."""
    assert action in ACTIONS, action
    return AuditEvent(
        id=uuid.uuid4(),
        occurred_at=dt.datetime.now(dt.UTC),
        action=action,
        actor_type=actor_type,
        actor_id=actor_id,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip=client_ip(request),
        request_id=getattr(request.state, "request_id", None) if request else None,
        details=details or {},
    )


def event_row(action: str, **fields: Any) -> dict[str, Any]:
    """The row of an ``event``, for callers that insert it in a statement of their own."""
    made = event(action, **fields)
    return {c.key: getattr(made, c.key) for c in AuditEvent.__table__.columns}


def record(session: AsyncSession, action: str, **fields: Any) -> None:
    """Add an ``event`` to the caller's unit of work (it commits with the change)."""
    session.add(event(action, **fields))


async def list_events(
    session: AsyncSession, *, limit: int, cursor: str | None, action: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Newest first, keyset paginated on (occurred_at, id)."""
    query = select(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if cursor is not None:
        after = decode_keyset_cursor(cursor)
        query = query.where(
            (AuditEvent.occurred_at < after[0])
            | ((AuditEvent.occurred_at == after[0]) & (AuditEvent.id < after[1]))
        )
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_keyset_cursor(last.occurred_at, last.id)
    return rows, next_cursor
