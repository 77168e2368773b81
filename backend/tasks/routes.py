"""Task routes: create in a project, list across projects, read/update/delete, bulk update.

Every committed task write bumps the tenant's stats generation (``committed_write``), after
the commit, so a reader never caches figures from before a write it could already see.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import status as http

from backend.analytics.cache import StatsWriteDB
from backend.identity.permissions import Principal, requires
from backend.kit.deps import TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.etag import (
    if_match_of,
    names_tag,
    not_modified,
    not_modified_response,
    page_etag,
    set_etag,
)
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.kit.text import NO_NUL_PATTERN, NUL_MESSAGE
from backend.kit.types import QueryDate
from backend.projects.models import Project
from backend.tasks.listing import DEFAULT_SORT, SORT_FIELDS, Sort
from backend.tasks.repository import TaskRepository
from backend.tasks.schemas import (
    BulkUpdate,
    StatusCategory,
    TaskCreate,
    TaskList,
    TaskRead,
    TaskUpdate,
)
from backend.tasks.service import TaskFilters, TaskService

router = APIRouter(prefix="/api/v1", tags=["tasks"])
AUTH_ERRORS = (400, 401, 403, 404)


async def get_service(session: TenantDB) -> TaskService:
    return TaskService(TaskRepository(session))


async def get_write_service(session: StatsWriteDB) -> TaskService:
    return TaskService(TaskRepository(session))


Service = Annotated[TaskService, Depends(get_service)]
WriteService = Annotated[TaskService, Depends(get_write_service)]


async def project_of_path(project_id: uuid.UUID, service: WriteService) -> Project:
    # A dependency, so an unknown project is 404 before the body is validated.
    return await service.project(project_id)


@router.post(
    "/projects/{project_id}/tasks",
    status_code=http.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=problem_responses(*AUTH_ERRORS, 409, 422),
    summary="Create a task in a project (key PROJECT-number); 409 if the project is archived",
)
async def create_task(
    caller: Annotated[Principal, requires("tasks:create")],
    project: Annotated[Project, Depends(project_of_path)],
    data: TaskCreate,
    service: WriteService,
    response: Response,
) -> TaskRead:
    task = await service.create(project.id, data, reporter=caller.user_id)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    set_etag(response, task.version)
    return (await service.present([task]))[0]


@router.get(
    "/tasks",
    response_model=Page[TaskRead],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="List tasks: filters, full-text search, sorting, cursor pagination (ETag; "
    "If-None-Match answers 304)",
    description="Filters combine with AND. `due_before`/`due_after` are exclusive and never "
    "match tasks without a due date. `q` searches title and description (web search syntax: "
    '`"exact phrase"`, `or`, `-word`). `sort` is a comma-separated list of '
    f"{', '.join(SORT_FIELDS)}, each optionally prefixed with `-` for descending; the id breaks "
    "ties and tasks without a due date come last. An unknown or repeated query parameter is 422.",
)
async def list_tasks(
    request: Request,
    response: Response,
    _caller: Annotated[Principal, requires("tasks:read")],
    service: Service,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    sort: Annotated[str, Query(max_length=200)] = DEFAULT_SORT,
    project_id: uuid.UUID | None = None,
    status_id: Annotated[uuid.UUID | None, Query(alias="status")] = None,
    status_category: StatusCategory | None = None,
    assignee_id: uuid.UUID | None = None,
    label: uuid.UUID | None = None,
    due_before: QueryDate | None = None,
    due_after: QueryDate | None = None,
    parent_id: uuid.UUID | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)] = None,
) -> Page[TaskRead] | Response:
    if q is not None and "\x00" in q:
        raise Problem(422, "validation-error", f"q {NUL_MESSAGE}")
    filters = TaskFilters(
        project_id=project_id,
        status_id=status_id,
        status_category=status_category,
        assignee_id=assignee_id,
        label=label,
        due_before=due_before,
        due_after=due_after,
        parent_id=parent_id,
        q=q,
    )
    rows, next_cursor = await service.page(
        filters=filters, sort=Sort(sort), limit=limit, cursor=cursor
    )
    # Every change to a task's representation moves its version (labels and watchers too);
    # its key also depends on the project's key.
    tag = page_etag(
        [part for row in rows for part in (row["id"], row["version"], row["key"])] + [next_cursor]
    )
    if names_tag(request, tag):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return Page[TaskRead](items=rows, next_cursor=next_cursor)


@router.post(
    "/tasks/bulk",
    response_model=TaskList,
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Change the status, assignee or labels of up to 100 tasks at once (all or nothing)",
    description="Every task id must exist (else 422 listing the missing ones) and the change "
    "must be valid for every task (a status of each task's project); otherwise nothing is "
    "changed. `labels` is `{add: [...], remove: [...]}`: other labels of each task stay.",
)
async def bulk_update_tasks(
    _caller: Annotated[Principal, requires("tasks:update")],
    data: BulkUpdate,
    service: WriteService,
) -> TaskList:
    return TaskList(items=await service.present(await service.bulk_update(data)))


@router.get(
    "/tasks/{task_id}",
    response_model=TaskRead,
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Get a task (ETag; If-None-Match answers 304)",
)
async def get_task(
    request: Request,
    response: Response,
    task_id: uuid.UUID,
    _caller: Annotated[Principal, requires("tasks:read")],
    service: Service,
) -> TaskRead | Response:
    task = await service.get(task_id)
    if not_modified(request, task.version):
        return not_modified_response(task.version)
    set_etag(response, task.version)
    return (await service.present([task]))[0]


@router.patch(
    "/tasks/{task_id}",
    response_model=TaskRead,
    responses=problem_responses(*AUTH_ERRORS, 412, 422),
    summary="Change a task's fields (If-Match honoured; null clears the optional ones)",
)
async def update_task(
    request: Request,
    response: Response,
    task_id: uuid.UUID,
    data: TaskUpdate,
    _caller: Annotated[Principal, requires("tasks:update")],
    service: WriteService,
) -> TaskRead:
    task = await service.update(task_id, data, if_match=if_match_of(request))
    set_etag(response, task.version)
    return (await service.present([task]))[0]


@router.delete(
    "/tasks/{task_id}",
    status_code=http.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH_ERRORS, 412, 422),
    summary="Delete a task and its subtasks (admins, or the task's reporter; If-Match honoured)",
)
async def delete_task(
    request: Request,
    task_id: uuid.UUID,
    caller: Annotated[Principal, requires("tasks:delete")],
    service: WriteService,
) -> Response:
    await service.delete(task_id, caller=caller, if_match=if_match_of(request))
    return Response(status_code=http.HTTP_204_NO_CONTENT)
