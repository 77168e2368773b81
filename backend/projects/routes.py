from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.analytics.cache import StatsWriteDB
from backend.identity.permissions import Principal, requires
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.etag import if_match_of, not_modified, not_modified_response, set_etag
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.projects.models import Project
from backend.projects.repository import ProjectRepository
from backend.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate, StatusRead
from backend.projects.service import ProjectService

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])
AUTH_ERRORS = (400, 401, 403, 404)


async def get_service(session: TenantDB) -> ProjectService:
    return ProjectService(ProjectRepository(session))


Service = Annotated[ProjectService, Depends(get_service)]


async def get_write_service(session: StatsWriteDB) -> ProjectService:
    return ProjectService(ProjectRepository(session))


#: Creating, renaming or deleting a project changes the tenant's stats.
WriteService = Annotated[ProjectService, Depends(get_write_service)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    responses=problem_responses(*AUTH_ERRORS, 409, 422),
    summary="Create a project (409 project-key-taken for a key in use)",
)
async def create_project(
    data: ProjectCreate,
    caller: Annotated[Principal, requires("projects:create")],
    service: WriteService,
    response: Response,
) -> Project:
    project = await service.create(data, actor=caller.user_id)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    set_etag(response, project.version)
    return project


@router.get(
    "",
    response_model=Page[ProjectRead],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="List projects (cursor paginated, oldest first)",
)
async def list_projects(
    _caller: Annotated[Principal, requires("projects:read")],
    service: Service,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    archived: bool | None = None,
) -> Page[ProjectRead]:
    rows, next_cursor = await service.list(limit=limit, cursor=cursor, archived=archived)
    return Page[ProjectRead](
        items=[ProjectRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Get a project",
)
async def get_project(
    request: Request,
    response: Response,
    project_id: uuid.UUID,
    _caller: Annotated[Principal, requires("projects:read")],
    service: Service,
) -> Project | Response:
    project = await service.get(project_id)
    if not_modified(request, project.version):
        return not_modified_response(project.version)
    set_etag(response, project.version)
    return project


@router.patch(
    "/{project_id}",
    response_model=ProjectRead,
    responses=problem_responses(*AUTH_ERRORS, 412, 422),
    summary="Change a project's name, description or archived flag (If-Match honoured)",
)
async def update_project(
    request: Request,
    response: Response,
    project_id: uuid.UUID,
    data: ProjectUpdate,
    _caller: Annotated[Principal, requires("projects:update")],
    service: WriteService,
) -> Project:
    project = await service.update(project_id, data, if_match=if_match_of(request))
    set_etag(response, project.version)
    return project


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH_ERRORS, 412, 422),
    summary="Delete a project and its tasks (If-Match honoured)",
)
async def delete_project(
    request: Request,
    project_id: uuid.UUID,
    _caller: Annotated[Principal, requires("projects:delete")],
    service: WriteService,
) -> Response:
    await service.delete(project_id, if_match=if_match_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{project_id}/statuses",
    response_model=list[StatusRead],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="The project's statuses (board columns) in order",
)
async def list_statuses(
    project_id: uuid.UUID,
    _caller: Annotated[Principal, requires("projects:read")],
    service: Service,
) -> list[StatusRead]:
    await service.get(project_id)
    return [StatusRead.model_validate(s) for s in await service.repo.statuses(project_id)]
