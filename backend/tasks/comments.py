"""Comments on tasks: schemas, queries and the rules of who may change them.

Anyone in the tenant may read a task's comments; writers (owner, admin, member) may post. Only
the author may edit a comment; the author or an owner/admin may delete it. A comment posted
with an API key has no author (``author_id`` null): nobody can edit it, and only an owner or
admin (a user or an API key with that role) can delete it. A comment whose author's account was
deleted also loses its author, with the same effect.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.events.types import CommentAdded, CommentDeleted, CommentEdited
from backend.identity.permissions import ADMINS, Principal
from backend.kit.errors import Problem
from backend.kit.etag import IfMatch
from backend.kit.pagination import decode_keyset_cursor, encode_keyset_cursor
from backend.kit.text import NotBlankText
from backend.kit.types import InputModel
from backend.tasks.lookup import task_or_404
from backend.tasks.models import Comment, Task

MAX_BODY = 20_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CommentWrite(InputModel):
    """The body is kept as written (Markdown); leading and trailing space is not stripped."""

    body: NotBlankText = Field(min_length=1, max_length=MAX_BODY)

    _body = field_validator("body")(_not_blank)


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_id: uuid.UUID
    author_id: uuid.UUID | None = Field(
        description="The user who wrote it; null when posted with an API key or when the "
        "author's account was deleted (then nobody can edit it)."
    )
    body: str
    created_at: dt.datetime
    updated_at: dt.datetime
    edited_at: dt.datetime | None = Field(description="Last edit of the body; null if never.")
    version: int = Field(description="Changes on every edit; the ETag is built from it.")


def _forbidden(action: str, detail: str) -> Problem:
    return Problem(403, "forbidden", detail, action=action)


async def create(
    session: AsyncSession, task: Task, data: CommentWrite, *, caller: Principal
) -> Comment:
    """Post a comment on a task (found with ``task_or_404(..., lock=True)``)."""
    comment = Comment(id=uuid.uuid4(), task_id=task.id, author_id=caller.user_id, body=data.body)
    session.add(comment)
    outbox.record(
        session,
        CommentAdded(
            task_id=task.id,
            project_id=task.project_id,
            comment_id=comment.id,
            author_id=comment.author_id,
        ),
    )
    await session.flush()
    await session.refresh(comment)
    return comment


async def get(session: AsyncSession, comment_id: uuid.UUID) -> Comment:
    """A comment of the current tenant, or 404."""
    comment = await session.get(Comment, comment_id)
    if comment is None:
        raise Problem(404, "comment-not-found", f"No comment {comment_id}.")
    return comment


async def list_page(
    session: AsyncSession, task_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Comment], str | None]:
    """One page of a task's comments, oldest first, and the cursor of the next page."""
    after = decode_keyset_cursor(cursor) if cursor else None
    await task_or_404(session, task_id)
    query = (
        select(Comment)
        .where(Comment.task_id == task_id)
        .order_by(Comment.created_at, Comment.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(
            tuple_(Comment.created_at, Comment.id) > tuple_(literal(after[0]), literal(after[1]))
        )
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_keyset_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


def _is_author(comment: Comment, caller: Principal) -> bool:
    return comment.author_id is not None and comment.author_id == caller.user_id


async def update(
    session: AsyncSession,
    comment: Comment,
    data: CommentWrite,
    *,
    caller: Principal,
    if_match: IfMatch = None,
) -> Comment:
    """Change the body (author only); an unchanged body changes nothing."""
    if not _is_author(comment, caller):
        raise _forbidden("comments:update", "Only the comment's author may edit it.")
    if if_match is not None:
        if_match(comment.version)
    if data.body != comment.body:
        comment.body = data.body
        comment.edited_at = func.now()  # type: ignore[assignment]
        project_id = await _project_of(session, comment.task_id)
        outbox.record(
            session,
            CommentEdited(task_id=comment.task_id, project_id=project_id, comment_id=comment.id),
        )
        await session.flush()
        await session.refresh(comment)
    return comment


async def delete(
    session: AsyncSession, comment: Comment, *, caller: Principal, if_match: IfMatch = None
) -> None:
    """Delete a comment (its author, or an owner or admin)."""
    if not (_is_author(comment, caller) or caller.role in ADMINS):
        raise _forbidden(
            "comments:delete", "Only the comment's author or an owner or admin may delete it."
        )
    if if_match is not None:
        if_match(comment.version)
    project_id = await _project_of(session, comment.task_id)
    await session.delete(comment)
    outbox.record(
        session,
        CommentDeleted(task_id=comment.task_id, project_id=project_id, comment_id=comment.id),
    )
    await session.flush()


async def _project_of(session: AsyncSession, task_id: uuid.UUID) -> uuid.UUID:
    """The project of a comment's task (comment events name it, like every task event)."""
    project_id: uuid.UUID = (
        await session.scalars(select(Task.project_id).where(Task.id == task_id))
    ).one()
    return project_id
