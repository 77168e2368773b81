"""All SQL of tasks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import User
from backend.projects.models import Project, ProjectStatus
from backend.tasks.models import Label, Task, task_labels, task_watchers

#: The columns a list shows (all but the search vector), read as plain rows: building ORM
#: objects for a page of 100 costs more than the query.
LIST_COLUMNS = [c for c in Task.__table__.c if c.name != "search"]


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, task_id: uuid.UUID) -> Task | None:
        return await self.session.get(Task, task_id)

    async def get_many_for_update(self, task_ids: Iterable[uuid.UUID]) -> list[Task]:
        # Locked in id order, so two bulk updates over overlapping tasks cannot deadlock.
        query = select(Task).where(Task.id.in_(list(task_ids))).order_by(Task.id).with_for_update()
        return list((await self.session.scalars(query)).all())

    async def project(self, project_id: uuid.UUID) -> Project | None:
        return await self.session.get(Project, project_id)

    async def take_number(self, project_id: uuid.UUID) -> tuple[int, bool, str] | None:
        """The project's next task number (counter bumped in one statement), whether it is
        archived, and its key. The row stays locked until commit: numbers never collide, and a
        rolled-back create gives its number back (no gaps)."""
        statement = (
            update(Project.__table__)  # type: ignore[arg-type]
            .where(Project.__table__.c.id == project_id)
            .values(next_task_number=Project.__table__.c.next_task_number + 1)
            .returning(
                Project.__table__.c.next_task_number - 1,
                Project.__table__.c.archived,
                Project.__table__.c.key,
            )
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def project_keys(self, project_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        query = select(Project.id, Project.key).where(Project.id.in_(set(project_ids)))
        return {pid: key for pid, key in (await self.session.execute(query)).all()}

    async def status(self, status_id: uuid.UUID) -> ProjectStatus | None:
        return await self.session.get(ProjectStatus, status_id)

    async def first_status(self, project_id: uuid.UUID) -> ProjectStatus | None:
        query = (
            select(ProjectStatus)
            .where(ProjectStatus.project_id == project_id)
            .order_by(ProjectStatus.position, ProjectStatus.id)
            .limit(1)
        )
        return (await self.session.scalars(query)).first()

    async def last_position(self, status_id: uuid.UUID) -> float | None:
        query = select(func.max(Task.position)).where(Task.status_id == status_id)
        return await self.session.scalar(query)

    async def active_user_exists(self, user_id: uuid.UUID) -> bool:
        users = User.__table__.c
        active = await self.session.scalar(select(users.is_active).where(users.id == user_id))
        return active is True

    async def existing_labels(self, label_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        query = select(Label.id).where(Label.id.in_(set(label_ids)))
        return set((await self.session.scalars(query)).all())

    async def has_subtasks(self, task_id: uuid.UUID) -> bool:
        return bool(await self.session.scalar(select(exists().where(Task.parent_id == task_id))))

    async def labels_of(self, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self._pairs(task_labels.c.task_id, task_labels.c.label_id, task_ids)

    async def watchers_of(self, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self._pairs(task_watchers.c.task_id, task_watchers.c.user_id, task_ids)

    async def _pairs(
        self, key: Any, value: Any, task_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        if task_ids:
            query = select(key, value).where(key.in_(list(task_ids))).order_by(key, value)
            for task_id, item in (await self.session.execute(query)).all():
                found[task_id].append(item)
        return found

    async def add_labels(self, task_id: uuid.UUID, label_ids: Iterable[uuid.UUID]) -> None:
        rows = [{"task_id": task_id, "label_id": label_id} for label_id in label_ids]
        if rows:
            await self.session.execute(insert(task_labels).values(rows).on_conflict_do_nothing())

    async def remove_labels(self, task_id: uuid.UUID, label_ids: Iterable[uuid.UUID]) -> None:
        ids = list(label_ids)
        if ids:
            await self.session.execute(
                delete(task_labels).where(
                    task_labels.c.task_id == task_id, task_labels.c.label_id.in_(ids)
                )
            )

    async def replace_labels(self, task_id: uuid.UUID, label_ids: Sequence[uuid.UUID]) -> None:
        await self.session.execute(delete(task_labels).where(task_labels.c.task_id == task_id))
        await self.add_labels(task_id, label_ids)

    async def page(
        self, *, filters: list[ColumnElement[bool]], order: list[Any], limit: int
    ) -> list[Task]:
        query: Select[tuple[Task]] = select(Task).where(*filters).order_by(*order).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def page_rows(
        self, *, filters: list[ColumnElement[bool]], order: list[Any], limit: int
    ) -> Sequence[Row[Any]]:
        """A page of task rows (``LIST_COLUMNS``) with ``project_key`` and the ``labels`` and
        ``watchers`` ids, in one query (correlated array subqueries on the (task_id, ...)
        primary keys)."""
        labels = (
            select(
                func.array_agg(aggregate_order_by(task_labels.c.label_id, task_labels.c.label_id))
            )
            .where(task_labels.c.task_id == Task.id)
            .scalar_subquery()
        )
        watchers = (
            select(
                func.array_agg(aggregate_order_by(task_watchers.c.user_id, task_watchers.c.user_id))
            )
            .where(task_watchers.c.task_id == Task.id)
            .scalar_subquery()
        )
        query = (
            select(
                *LIST_COLUMNS,
                Project.key.label("project_key"),
                labels.label("labels"),
                watchers.label("watchers"),
            )
            .join(Project, Project.id == Task.project_id)
            .where(*filters)
            .order_by(*order)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    @staticmethod
    def label_filter(label_id: uuid.UUID) -> ColumnElement[bool]:
        return exists().where(task_labels.c.task_id == Task.id, task_labels.c.label_id == label_id)

    @staticmethod
    def search_filter(q: str) -> ColumnElement[bool]:
        query = func.websearch_to_tsquery(cast(literal("simple"), REGCONFIG), q)
        return Task.search.op("@@")(query)

    def add(self, task: Task) -> None:
        self.session.add(task)

    async def delete(self, task: Task) -> None:
        await self.session.delete(task)

    async def subtasks_locked(self, task: Task) -> list[Task]:
        """The subtasks of ``task`` (which go with it), with ``task`` locked first: adding a
        subtask locks its parent too (the foreign key), so none appears unseen before the
        delete commits."""
        await self.session.execute(select(Task.id).where(Task.id == task.id).with_for_update())
        query = select(Task).where(Task.parent_id == task.id).order_by(Task.number)
        return list((await self.session.scalars(query)).all())

    async def flush(self) -> None:
        await self.session.flush()

    async def refresh(self, task: Task) -> None:
        await self.session.refresh(task)
