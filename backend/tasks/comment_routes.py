"""Comments: posted and listed under a task, read, edited and deleted by their own id.

The task or comment a route acts on is loaded by a dependency declared after the permission:
an unknown id (another tenant's, say) is 404 before the body is validated, and a role that may
not act is 403 before anything is looked up.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.identity.permissions import Principal, requires
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.etag import if_match_of, not_modified, not_modified_response, set_etag
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.tasks import comments
from backend.tasks.comments import CommentRead, CommentWrite
from backend.tasks.lookup import task_or_404
from backend.tasks.models import Comment, Task

router = APIRouter(prefix="/api/v1", tags=["comments"])
ERRORS = (400, 401, 403, 404, 422)


async def _task_to_comment_on(task_id: uuid.UUID, db: TenantDB) -> Task:
    return await task_or_404(db, task_id, lock=True)


async def _comment(comment_id: uuid.UUID, db: TenantDB) -> Comment:
    return await comments.get(db, comment_id)


TaskToCommentOn = Annotated[Task, Depends(_task_to_comment_on)]
ExistingComment = Annotated[Comment, Depends(_comment)]


@router.post(
    "/tasks/{task_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentRead,
    responses=problem_responses(*ERRORS),
    summary="Comment on a task (posted with an API key: no author, so nobody can edit it)",
)
async def create_comment(
    data: CommentWrite,
    caller: Annotated[Principal, requires("comments:create")],
    task: TaskToCommentOn,
    db: TenantDB,
    response: Response,
) -> Comment:
    comment = await comments.create(db, task, data, caller=caller)
    response.headers["Location"] = f"/api/v1/comments/{comment.id}"
    set_etag(response, comment.version)
    return comment


@router.get(
    "/tasks/{task_id}/comments",
    response_model=Page[CommentRead],
    responses=problem_responses(*ERRORS),
    summary="List a task's comments (cursor paginated, oldest first)",
)
async def list_comments(
    task_id: uuid.UUID,
    _caller: Annotated[Principal, requires("comments:read")],
    db: TenantDB,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[CommentRead]:
    rows, next_cursor = await comments.list_page(db, task_id, limit=limit, cursor=cursor)
    return Page[CommentRead](
        items=[CommentRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/comments/{comment_id}",
    response_model=CommentRead,
    responses=problem_responses(*ERRORS),
    summary="Get a comment (ETag; If-None-Match answers 304)",
)
async def get_comment(
    request: Request,
    response: Response,
    _caller: Annotated[Principal, requires("comments:read")],
    comment: ExistingComment,
) -> Comment | Response:
    if not_modified(request, comment.version):
        return not_modified_response(comment.version)
    set_etag(response, comment.version)
    return comment


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentRead,
    responses=problem_responses(*ERRORS, 412),
    summary="Edit a comment's body (its author only; sets edited_at; If-Match honoured)",
)
async def update_comment(
    request: Request,
    response: Response,
    data: CommentWrite,
    caller: Annotated[Principal, requires("comments:update")],
    comment: ExistingComment,
    db: TenantDB,
) -> Comment:
    comment = await comments.update(db, comment, data, caller=caller, if_match=if_match_of(request))
    set_etag(response, comment.version)
    return comment


@router.delete(
    "/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*ERRORS, 412),
    summary="Delete a comment (its author, or an owner or admin; If-Match honoured)",
)
async def delete_comment(
    request: Request,
    caller: Annotated[Principal, requires("comments:delete")],
    comment: ExistingComment,
    db: TenantDB,
) -> Response:
    await comments.delete(db, comment, caller=caller, if_match=if_match_of(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
