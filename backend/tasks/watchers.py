"""Watchers of a task: the users who follow it (and will be notified of its changes).

A writer may start or stop watching a task themself; an owner or admin may add or remove any
user. Only active users of the tenant can be added; removing works for any user (a deactivated
user can still be taken off). Both are idempotent: adding a watcher twice, or removing one who
is not watching, answers 204 and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.events.types import WatcherAdded, WatcherRemoved
from backend.identity.models import User
from backend.identity.permissions import ADMINS, Principal
from backend.kit.errors import Problem
from backend.kit.pagination import decode_cursor, encode_cursor
from backend.tasks.lookup import task_or_404
from backend.tasks.models import Task, task_watchers

COLS = task_watchers.c


async def list_page(
    session: AsyncSession, task_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[uuid.UUID], str | None]:
    """One page of the ids of a task's watchers (in id order), and the next page's cursor."""
    after = None
    if cursor:
        (raw,) = decode_cursor(cursor, 1)
        try:
            after = uuid.UUID(raw) if isinstance(raw, str) else None
        except ValueError:
            after = None
        if after is None:
            raise Problem(422, "invalid-cursor", "cursor is not one this API returned")
    await task_or_404(session, task_id)
    query = (
        select(COLS.user_id).where(COLS.task_id == task_id).order_by(COLS.user_id).limit(limit + 1)
    )
    if after is not None:
        query = query.where(COLS.user_id > after)
    ids = list((await session.scalars(query)).all())
    next_cursor = None
    if len(ids) > limit:
        ids = ids[:limit]
        next_cursor = encode_cursor([str(ids[-1])])
    return ids, next_cursor


async def _target(
    session: AsyncSession, task_id: uuid.UUID, user_id: uuid.UUID, caller: Principal
) -> tuple[Task, User]:
    task = await task_or_404(session, task_id, lock=True)
    if user_id != caller.user_id and caller.role not in ADMINS:
        raise Problem(
            403,
            "forbidden",
            "You may only add or remove yourself as a watcher; owners and admins may change "
            "anyone's.",
            action="watchers:update",
        )
    query = (
        select(User)
        .where(User.__table__.c.id == user_id)
        .with_for_update(read=True, key_share=True)
    )
    user = (await session.scalars(query)).first()
    if user is None:
        raise Problem(404, "user-not-found", f"No user {user_id}.")
    return task, user


async def add(
    session: AsyncSession, task_id: uuid.UUID, user_id: uuid.UUID, *, caller: Principal
) -> None:
    """Make a user watch a task (idempotent)."""
    task, user = await _target(session, task_id, user_id, caller)
    if not user.is_active:
        raise Problem(422, "user-inactive", f"User {user_id} is deactivated and cannot watch.")
    added = await session.scalar(
        insert(task_watchers)
        .values(task_id=task_id, user_id=user_id)
        .on_conflict_do_nothing()
        .returning(task_watchers.c.user_id)
    )
    if added is not None:
        await _touch(session, task_id)
        outbox.record(
            session, WatcherAdded(task_id=task_id, project_id=task.project_id, user_id=user_id)
        )


async def remove(
    session: AsyncSession,
    task_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    caller: Principal,
    if_match: Callable[[int], None] | None = None,
) -> None:
    """Stop a user watching a task (idempotent). ``if_match`` checks the task's version (the
    watchers are part of the task: adding or removing one changes its ETag)."""
    task, _user = await _target(session, task_id, user_id, caller)
    if if_match is not None:
        if_match(task.version)
    removed = await session.scalar(
        sql_delete(task_watchers)
        .where(COLS.task_id == task_id, COLS.user_id == user_id)
        .returning(COLS.user_id)
    )
    if removed is not None:
        await _touch(session, task_id)
        outbox.record(
            session, WatcherRemoved(task_id=task_id, project_id=task.project_id, user_id=user_id)
        )


async def _touch(session: AsyncSession, task_id: uuid.UUID) -> None:
    """Watchers are part of a task's representation: a change moves its version (ETag)."""
    await session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(version=Task.version + 1)
        .execution_options(synchronize_session=False)
    )
