"""Finding the task a comment or watcher hangs on (until the tasks repository is merged)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.errors import Problem
from backend.tasks.models import Task


async def task_or_404(session: AsyncSession, task_id: uuid.UUID, *, lock: bool = False) -> Task:
    """The task of the current tenant, or 404 ``task-not-found``.

    ``lock`` takes FOR KEY SHARE on the row, as the foreign key check would: a task deleted at
    the same moment then waits for this transaction instead of failing its insert with a 500.
    """
    query = select(Task).where(Task.id == task_id)
    if lock:
        query = query.with_for_update(read=True, key_share=True)
    task = (await session.scalars(query)).first()
    if task is None:
        raise Problem(404, "task-not-found", f"No task {task_id}.")
    return task
