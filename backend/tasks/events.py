"""The domain events of tasks, built from a task before and after a change.

Services call these next to the change, in its session: the event commits with it or not at
all. A change of status is ``TaskStatusChanged``, of assignee ``TaskAssigned``; any other field
(labels included) is ``TaskUpdated`` with the new values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.events.types import (
    TaskAssigned,
    TaskCreated,
    TaskDeleted,
    TaskStatusChanged,
    TaskUpdated,
)
from backend.tasks.models import PRIORITIES, Task

#: Fields whose change is a TaskUpdated (status and assignee have events of their own).
UPDATED_FIELDS = (
    "title",
    "description",
    "priority",
    "start_date",
    "due_date",
    "parent_id",
    "estimate",
    "position",
)


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def snapshot(task: Task) -> dict[str, Any]:
    """What a later ``changed`` compares with."""
    fields = (*UPDATED_FIELDS, "status_id", "status_category", "assignee_id")
    return {name: getattr(task, name) for name in fields}


def created(session: AsyncSession, task: Task, key: str) -> None:
    outbox.record(
        session,
        TaskCreated(
            task_id=task.id,
            project_id=task.project_id,
            key=key,
            title=task.title,
            status_id=task.status_id,
            status_category=task.status_category,
            priority=PRIORITIES[task.priority],
            assignee_id=task.assignee_id,
            parent_id=task.parent_id,
        ),
    )


def changed(
    session: AsyncSession,
    before: dict[str, Any],
    task: Task,
    *,
    labels: list[uuid.UUID] | None = None,
) -> None:
    """The events of what differs between ``before`` and ``task`` now (``labels``: the new
    label ids, when they changed)."""
    if before["status_id"] != task.status_id:
        outbox.record(
            session,
            TaskStatusChanged(
                task_id=task.id,
                project_id=task.project_id,
                from_status_id=before["status_id"],
                to_status_id=task.status_id,
                from_category=before["status_category"],
                to_category=task.status_category,
            ),
        )
    if before["assignee_id"] != task.assignee_id:
        outbox.record(
            session,
            TaskAssigned(
                task_id=task.id,
                project_id=task.project_id,
                from_assignee_id=before["assignee_id"],
                to_assignee_id=task.assignee_id,
            ),
        )
    changes = {
        name: _json(PRIORITIES[getattr(task, name)] if name == "priority" else getattr(task, name))
        for name in UPDATED_FIELDS
        if before[name] != getattr(task, name)
    }
    if labels is not None:
        changes["labels"] = sorted(str(i) for i in labels)
    if changes:
        outbox.record(
            session, TaskUpdated(task_id=task.id, project_id=task.project_id, changes=changes)
        )


def deleted(session: AsyncSession, task: Task, key: str) -> None:
    outbox.record(
        session,
        TaskDeleted(
            task_id=task.id,
            project_id=task.project_id,
            key=key,
            status_id=task.status_id,
            status_category=task.status_category,
        ),
    )
