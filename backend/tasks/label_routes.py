"""Labels of the tenant: list and create (writers), rename, recolour and delete (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from backend.identity.permissions import Principal, requires
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.etag import if_match_of, not_modified, not_modified_response, set_etag
from backend.kit.pagination import MAX_LIMIT, Page
from backend.tasks import labels
from backend.tasks.labels import LabelCreate, LabelRead, LabelUpdate
from backend.tasks.models import Label

router = APIRouter(prefix="/api/v1/labels", tags=["labels"])
ERRORS = (400, 401, 403, 404, 422)


@router.get(
    "",
    response_model=Page[LabelRead],
    responses=problem_responses(*ERRORS),
    summary="List the tenant's labels (sorted by name ignoring case; cursor paginated)",
)
async def list_labels(
    _caller: Annotated[Principal, requires("labels:read")],
    db: TenantDB,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[LabelRead]:
    rows, next_cursor = await labels.list_page(db, limit=limit, cursor=cursor)
    return Page[LabelRead](
        items=[LabelRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LabelRead,
    responses=problem_responses(*ERRORS, 409),
    summary="Create a label (name unique ignoring case: 409 label-exists)",
)
async def create_label(
    data: LabelCreate,
    _caller: Annotated[Principal, requires("labels:create")],
    db: TenantDB,
    response: Response,
) -> Label:
    label = await labels.create(db, data)
    response.headers["Location"] = f"/api/v1/labels/{label.id}"
    set_etag(response, labels.content_version(label))
    return label


@router.get(
    "/{label_id}",
    response_model=LabelRead,
    responses=problem_responses(*ERRORS),
    summary="Get a label (ETag; If-None-Match answers 304)",
)
async def get_label(
    request: Request,
    response: Response,
    label_id: uuid.UUID,
    _caller: Annotated[Principal, requires("labels:read")],
    db: TenantDB,
) -> Label | Response:
    label = await labels.get(db, label_id)
    version = labels.content_version(label)
    if not_modified(request, version):
        return not_modified_response(version)
    set_etag(response, version)
    return label


@router.patch(
    "/{label_id}",
    response_model=LabelRead,
    responses=problem_responses(*ERRORS, 409, 412),
    summary="Rename or recolour a label (admins; If-Match honoured)",
)
async def update_label(
    request: Request,
    response: Response,
    label_id: uuid.UUID,
    data: LabelUpdate,
    _caller: Annotated[Principal, requires("labels:manage")],
    db: TenantDB,
) -> Label:
    label = await labels.update(db, label_id, data, if_match=if_match_of(request))
    set_etag(response, labels.content_version(label))
    return label


@router.delete(
    "/{label_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS, 412),
    summary="Delete a label and take it off every task (admins; If-Match honoured)",
)
async def delete_label(
    request: Request,
    label_id: uuid.UUID,
    _caller: Annotated[Principal, requires("labels:manage")],
    db: TenantDB,
) -> Response:
    await labels.delete(db, label_id, if_match=if_match_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
