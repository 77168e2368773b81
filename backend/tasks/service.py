"""Task use cases. Services never commit: the request owns the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func

from backend.identity.permissions import ADMINS, Principal
from backend.kit.errors import Problem
from backend.kit.etag import IfMatch
from backend.projects.models import Project, ProjectStatus
from backend.tasks import events as task_events
from backend.tasks.listing import Sort
from backend.tasks.models import PRIORITIES, Task
from backend.tasks.repository import TaskRepository
from backend.tasks.schemas import MAX_LABELS, BulkUpdate, TaskCreate, TaskRead, TaskUpdate

#: Gap between a task appended to a status and the last one before it.
POSITION_STEP = 1.0


@dataclass(frozen=True, slots=True)
class TaskFilters:
    project_id: uuid.UUID | None = None
    status_id: uuid.UUID | None = None
    status_category: str | None = None
    assignee_id: uuid.UUID | None = None
    label: uuid.UUID | None = None
    due_before: dt.date | None = None
    due_after: dt.date | None = None
    parent_id: uuid.UUID | None = None
    q: str | None = None


class Errors:
    """Validation errors found while checking a request against the data (422, listed like
    request validation errors)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str, message: str, **extra: Any) -> None:
        self.items.append({"field": f"body.{field}", "message": message, "type": "value_error"})
        self.items[-1].update(extra)

    def raise_any(self) -> None:
        if self.items:
            # Not "validation-error": the body fits the schema, the data it names does not
            # (an id of another project, a date before the start, ...).
            raise Problem(
                422,
                "invalid-reference",
                f"{len(self.items)} field(s) do not fit the tenant's data",
                title="Request refers to data that does not fit",
                errors=self.items,
            )


class TaskService:
    def __init__(self, repo: TaskRepository) -> None:
        self.repo = repo

    async def project(self, project_id: uuid.UUID) -> Project:
        """A project of the current tenant, or 404."""
        project = await self.repo.project(project_id)
        if project is None:
            raise Problem(404, "project-not-found", f"No project {project_id}.")
        return project

    async def get(self, task_id: uuid.UUID) -> Task:
        """A task of the current tenant, or 404."""
        task = await self.repo.get(task_id)
        if task is None:
            raise Problem(404, "task-not-found", f"No task {task_id}.")
        return task

    async def create(
        self, project_id: uuid.UUID, data: TaskCreate, *, reporter: uuid.UUID | None
    ) -> Task:
        """Create a task with the project's next number (OPS-42)."""
        project = await self.project(project_id)
        if project.archived:
            raise _archived(project)
        errors = Errors()
        status = await self._status_of(project_id, data.status_id, errors)
        await self._check_assignee(data.assignee_id, errors)
        await self._check_labels("labels", data.labels, errors)
        if data.parent_id is not None:
            await self._check_parent(None, project_id, data.parent_id, errors)
        _check_dates(data.start_date, data.due_date, errors)
        errors.raise_any()
        assert status is not None
        taken = await self.repo.take_number(project_id)
        if taken is None:
            raise Problem(404, "project-not-found", f"No project {project_id}.")
        number, archived, _key = taken
        if archived:  # archived after we read it: the counter bump is rolled back with us
            raise _archived(project)
        position = data.position
        if position is None:
            position = await self._after_last(status.id)
        task = Task(
            id=uuid.uuid4(),
            project_id=project_id,
            number=number,
            title=data.title,
            description=data.description,
            status_id=status.id,
            status_category=status.category,
            priority=PRIORITIES.index(data.priority),
            assignee_id=data.assignee_id,
            reporter_id=reporter,
            start_date=data.start_date,
            due_date=data.due_date,
            parent_id=data.parent_id,
            estimate=data.estimate,
            position=position,
            completed_at=func.now() if status.category == "done" else None,
        )
        self.repo.add(task)
        await self.repo.flush()
        await self.repo.add_labels(task.id, data.labels)
        await self.repo.refresh(task)
        task_events.created(self.repo.session, task, f"{_key}-{number}")
        return task

    async def page(
        self, *, filters: TaskFilters, sort: Sort, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of tasks in ``sort`` order, as ``TaskRead`` fields (the route's response
        model validates them once, in pydantic-core), and the next page's cursor."""
        clauses = _filter_clauses(filters)
        if cursor:
            clauses.append(sort.after(cursor))
        rows = await self.repo.page_rows(filters=clauses, order=sort.order_by(), limit=limit + 1)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = sort.cursor_after(rows[-1])
        return [_list_item(row._mapping) for row in rows], next_cursor

    async def update(self, task_id: uuid.UUID, data: TaskUpdate, *, if_match: IfMatch) -> Task:
        """Apply the given fields; fields left out stay as they are."""
        task = await self.get(task_id)
        if if_match is not None:
            if_match(task.version)
        changes = data.model_dump(exclude_unset=True)
        errors = Errors()
        status = None
        if "status_id" in changes:
            status = await self._status_of(task.project_id, data.status_id, errors)
        if changes.get("assignee_id") is not None:
            await self._check_assignee(data.assignee_id, errors)
        if "labels" in changes:
            await self._check_labels("labels", data.labels or [], errors)
        if changes.get("parent_id") is not None:
            await self._check_parent(task.id, task.project_id, changes["parent_id"], errors)
        _check_dates(
            changes.get("start_date", task.start_date),
            changes.get("due_date", task.due_date),
            errors,
        )
        errors.raise_any()
        before = task_events.snapshot(task)
        for field in ("title", "assignee_id", "start_date", "due_date", "parent_id", "estimate"):
            if field in changes:
                setattr(task, field, changes[field])
        if "description" in changes:
            task.description = changes["description"] or ""
        if "priority" in changes:
            task.priority = PRIORITIES.index(changes["priority"])
        if status is not None and status.id != task.status_id:
            await self._move(task, status, place=("position" not in changes))
        if "position" in changes:
            task.position = changes["position"]
        if "labels" in changes:
            await self.repo.replace_labels(task.id, data.labels or [])
            _touch(task)
        await self.repo.flush()
        await self.repo.refresh(task)
        new_labels = (data.labels or []) if "labels" in changes else None
        task_events.changed(self.repo.session, before, task, labels=new_labels)
        return task

    async def delete(
        self, task_id: uuid.UUID, *, caller: Principal, if_match: IfMatch = None
    ) -> None:
        """Delete a task and its subtasks: admins may delete any task, others their own."""
        task = await self.get(task_id)
        if caller.role not in ADMINS and (
            caller.user_id is None or caller.user_id != task.reporter_id
        ):
            raise Problem(
                403,
                "forbidden",
                "Only admins and the task's reporter may delete a task.",
                action="tasks:delete",
            )
        if if_match is not None:
            if_match(task.version)
        keys = await self.repo.project_keys([task.project_id])
        key = keys[task.project_id]
        # The database deletes the subtasks with it (ON DELETE CASCADE); each is a deletion
        # the event log and the live feed must show.
        for subtask in await self.repo.subtasks_locked(task):
            task_events.deleted(self.repo.session, subtask, f"{key}-{subtask.number}")
        task_events.deleted(self.repo.session, task, f"{key}-{task.number}")
        await self.repo.delete(task)

    async def bulk_update(self, data: BulkUpdate) -> list[Task]:
        """Change many tasks at once: all of them or none."""
        tasks = await self.repo.get_many_for_update(data.task_ids)
        found = {t.id for t in tasks}
        missing = [str(i) for i in data.task_ids if i not in found]
        if missing:
            raise Problem(
                422,
                "tasks-not-found",
                f"{len(missing)} task(s) do not exist; nothing was changed.",
                missing=missing,
                errors=[
                    {"field": "body.task_ids", "message": "no such task", "type": "value_error"}
                ],
            )
        changes = data.set
        fields = changes.model_fields_set
        errors = Errors()
        status = None
        if "status_id" in fields and changes.status_id is not None:
            status = await self.repo.status(changes.status_id)
            if status is None:
                errors.add("set.status_id", "no such status")
            else:
                others = [str(t.id) for t in tasks if t.project_id != status.project_id]
                if others:
                    errors.add(
                        "set.status_id",
                        "the status belongs to another project than some of the tasks",
                        task_ids=others,
                    )
        if changes.assignee_id is not None:
            await self._check_assignee(changes.assignee_id, errors, field="set.assignee_id")
        labels = changes.labels
        current = await self.repo.labels_of(list(found))
        if labels is not None:
            await self._check_labels("set.labels.add", labels.add, errors)
            await self._check_labels("set.labels.remove", labels.remove, errors)
            full = [
                str(t.id)
                for t in tasks
                if len((set(current[t.id]) | set(labels.add)) - set(labels.remove)) > MAX_LABELS
            ]
            if full:
                errors.add(
                    "set.labels.add", f"a task can carry at most {MAX_LABELS} labels", task_ids=full
                )
        errors.raise_any()
        before = {t.id: task_events.snapshot(t) for t in tasks}
        new_labels: dict[uuid.UUID, list[uuid.UUID]] = {}
        for task in tasks:
            if status is not None and status.id != task.status_id:
                await self._move(task, status, place=True)
            if "assignee_id" in fields:
                task.assignee_id = changes.assignee_id
            if labels is not None:
                had = set(current[task.id])
                after = (had | set(labels.add)) - set(labels.remove)
                if after != had:
                    await self.repo.add_labels(task.id, sorted(set(labels.add) - had))
                    await self.repo.remove_labels(task.id, sorted(set(labels.remove) & had))
                    new_labels[task.id] = sorted(after)
                    _touch(task)
        await self.repo.flush()
        for task in tasks:
            await self.repo.refresh(task)
            task_events.changed(
                self.repo.session, before[task.id], task, labels=new_labels.get(task.id)
            )
        by_id = {t.id: t for t in tasks}
        return [by_id[i] for i in data.task_ids]

    async def present(self, tasks: Sequence[Task]) -> list[TaskRead]:
        """Response models of tasks: their keys, labels and watchers in three queries."""
        ids = [t.id for t in tasks]
        keys = await self.repo.project_keys(t.project_id for t in tasks)
        labels = await self.repo.labels_of(ids)
        watchers = await self.repo.watchers_of(ids)
        return [read_model(t, keys[t.project_id], labels[t.id], watchers[t.id]) for t in tasks]

    async def _status_of(
        self, project_id: uuid.UUID, status_id: uuid.UUID | None, errors: Errors
    ) -> ProjectStatus | None:
        if status_id is None:
            status = await self.repo.first_status(project_id)
            if status is None:
                raise Problem(409, "project-has-no-statuses", "The project has no statuses.")
            return status
        status = await self.repo.status(status_id)
        if status is None or status.project_id != project_id:
            errors.add("status_id", "not a status of the task's project")
            return None
        return status

    async def _check_assignee(
        self, user_id: uuid.UUID | None, errors: Errors, *, field: str = "assignee_id"
    ) -> None:
        if user_id is not None and not await self.repo.active_user_exists(user_id):
            errors.add(field, "no active user with this id")

    async def _check_labels(self, field: str, label_ids: list[uuid.UUID], errors: Errors) -> None:
        if not label_ids:
            return
        known = await self.repo.existing_labels(label_ids)
        unknown = [str(i) for i in label_ids if i not in known]
        if unknown:
            errors.add(field, "no such label(s)", missing=unknown)

    async def _check_parent(
        self,
        task_id: uuid.UUID | None,
        project_id: uuid.UUID,
        parent_id: uuid.UUID,
        errors: Errors,
    ) -> None:
        if parent_id == task_id:
            errors.add("parent_id", "a task cannot be its own parent")
            return
        parent = await self.repo.get(parent_id)
        if parent is None or parent.project_id != project_id:
            errors.add("parent_id", "not a task of the same project")
        elif parent.parent_id is not None:
            errors.add("parent_id", "the parent is a subtask; subtasks cannot have subtasks")
        elif task_id is not None and await self.repo.has_subtasks(task_id):
            errors.add("parent_id", "this task has subtasks, so it cannot become a subtask")

    async def _after_last(self, status_id: uuid.UUID) -> float:
        last = await self.repo.last_position(status_id)
        return POSITION_STEP if last is None else last + POSITION_STEP

    async def _move(self, task: Task, status: ProjectStatus, *, place: bool) -> None:
        """Into ``status``: completed_at is set on entering done and cleared on leaving it."""
        if place:
            task.position = await self._after_last(status.id)
        if status.category == "done" and task.status_category != "done":
            task.completed_at = func.now()  # type: ignore[assignment]
        elif status.category != "done":
            task.completed_at = None
        task.status_id = status.id
        task.status_category = status.category


def _archived(project: Project) -> Problem:
    return Problem(
        409, "project-archived", f"Project {project.key} is archived; unarchive it to add tasks."
    )


def _check_dates(start: dt.date | None, due: dt.date | None, errors: Errors) -> None:
    if start is not None and due is not None and due < start:
        errors.add("due_date", "the due date cannot precede the start date")


def _touch(task: Task) -> None:
    # Labels live in another table: touching the row bumps updated_at and the version (ETag).
    task.updated_at = func.now()  # type: ignore[assignment]


def _filter_clauses(filters: TaskFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.project_id is not None:
        clauses.append(Task.project_id == filters.project_id)
    if filters.status_id is not None:
        clauses.append(Task.status_id == filters.status_id)
    if filters.status_category is not None:
        clauses.append(Task.status_category == filters.status_category)
    if filters.assignee_id is not None:
        clauses.append(Task.assignee_id == filters.assignee_id)
    if filters.label is not None:
        clauses.append(TaskRepository.label_filter(filters.label))
    if filters.due_before is not None:
        clauses.append(Task.due_date < filters.due_before)
    if filters.due_after is not None:
        clauses.append(Task.due_date > filters.due_after)
    if filters.parent_id is not None:
        clauses.append(Task.parent_id == filters.parent_id)
    if filters.q is not None:
        clauses.append(TaskRepository.search_filter(filters.q))
    return clauses


def _list_item(row: RowMapping) -> dict[str, Any]:
    """The ``TaskRead`` fields of a ``page_rows`` row."""
    item = dict(row)
    item["key"] = f"{item.pop('project_key')}-{item['number']}"
    item["priority"] = PRIORITIES[item["priority"]]
    item["labels"] = item["labels"] or []
    item["watchers"] = item["watchers"] or []
    return item


def read_model(
    t: Task, project_key: str, labels: list[uuid.UUID], watchers: list[uuid.UUID]
) -> TaskRead:
    """The response model of a loaded task. Built without validation: every value comes from
    the database, and FastAPI validates the response once more on the way out."""
    return TaskRead.model_construct(
        id=t.id,
        key=f"{project_key}-{t.number}",
        number=t.number,
        project_id=t.project_id,
        title=t.title,
        description=t.description,
        status_id=t.status_id,
        status_category=t.status_category,  # type: ignore[arg-type]
        priority=PRIORITIES[t.priority],  # type: ignore[arg-type]
        assignee_id=t.assignee_id,
        reporter_id=t.reporter_id,
        labels=labels,
        watchers=watchers,
        due_date=t.due_date,
        start_date=t.start_date,
        parent_id=t.parent_id,
        estimate=t.estimate,
        position=t.position,
        created_at=t.created_at,
        updated_at=t.updated_at,
        completed_at=t.completed_at,
        version=t.version,
    )
