"""Labels of the tenant: schemas, queries and rules.

A label's name is unique without regard to case ("Bug" and "bug" are one label) and is kept as
first written; its colour is ``#rrggbb``, stored in lowercase. Any writer may create a label;
only owners and admins may rename, recolour or delete one (deleting takes it off every task).

The labels table has no version column, so a label's ETag is derived from its content (name and
colour): it changes whenever the label does, and If-Match on PATCH/DELETE compares it while the
row is locked, so two concurrent edits cannot both pass the check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.events import outbox
from backend.events.types import LabelCreated, LabelDeleted, LabelUpdated
from backend.kit.errors import Problem
from backend.kit.etag import IfMatch
from backend.kit.pagination import decode_cursor, encode_cursor
from backend.kit.text import NotBlankText
from backend.kit.types import InputModel, omittable
from backend.tasks.models import Label, Task, task_labels

DEFAULT_COLOR = "#6b7280"
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
COLOR_HELP = '"#rrggbb" hex colour (stored lowercase)'


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _color(value: str) -> str:
    if not COLOR_RE.fullmatch(value):
        raise ValueError(f"must be a {COLOR_HELP}, like {DEFAULT_COLOR}")
    return value.lower()


class LabelCreate(InputModel):
    name: NotBlankText = Field(min_length=1, max_length=50, description="Unique, ignoring case.")
    color: str = Field(
        default=DEFAULT_COLOR, max_length=7, pattern=COLOR_PATTERN, description=COLOR_HELP
    )

    _check_name = field_validator("name")(_name)
    _check_color = field_validator("color")(_color)


class LabelUpdate(InputModel):
    """Fields left out stay as they are."""

    name: NotBlankText | None = omittable(min_length=1, max_length=50)
    color: str | None = omittable(max_length=7, pattern=COLOR_PATTERN, description=COLOR_HELP)

    @field_validator("name", "color", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _name(value)

    @field_validator("color")
    @classmethod
    def _valid_color(cls, value: str) -> str:
        return _color(value)


class LabelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    color: str
    created_at: dt.datetime


def content_version(label: Label) -> int:
    """A number that changes whenever the label's name or colour does (its ETag)."""
    digest = hashlib.sha256(f"{label.name}\x00{label.color}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _taken(name: str) -> Problem:
    return Problem(409, "label-exists", f"A label named {name!r} exists already (ignoring case).")


async def _name_taken(session: AsyncSession, name: str, *, other_than: uuid.UUID | None) -> bool:
    query = select(Label.id).where(func.lower(Label.name) == func.lower(name))
    if other_than is not None:
        query = query.where(Label.id != other_than)
    return (await session.scalars(query.limit(1))).first() is not None


async def _flush_unique(session: AsyncSession, name: str) -> None:
    # A concurrent request may have taken the name between the check and the write.
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _taken(name) from exc


async def create(session: AsyncSession, data: LabelCreate) -> Label:
    """Create a label; 409 ``label-exists`` if the name is taken (ignoring case)."""
    if await _name_taken(session, data.name, other_than=None):
        raise _taken(data.name)
    label = Label(id=uuid.uuid4(), name=data.name, color=data.color)
    session.add(label)
    outbox.record(session, LabelCreated(label_id=label.id, name=label.name))
    await _flush_unique(session, data.name)
    await session.refresh(label)
    return label


async def get(session: AsyncSession, label_id: uuid.UUID, *, lock: bool = False) -> Label:
    """A label of the current tenant, or 404."""
    query = select(Label).where(Label.id == label_id)
    if lock:
        query = query.with_for_update()
    label = (await session.scalars(query)).first()
    if label is None:
        raise Problem(404, "label-not-found", f"No label {label_id}.")
    return label


async def list_page(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[Label], str | None]:
    """One page of labels sorted by name (ignoring case), and the cursor of the next page."""
    sort_key = func.lower(Label.name)
    query = select(Label, sort_key).order_by(sort_key).limit(limit + 1)
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, str) or len(after) > 200:
            raise Problem(422, "invalid-cursor", "cursor is not one this API returned")
        query = query.where(sort_key > after)
    rows = list((await session.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1][1]])
    return [row[0] for row in rows], next_cursor


async def update(
    session: AsyncSession, label_id: uuid.UUID, data: LabelUpdate, *, if_match: IfMatch = None
) -> Label:
    """Rename or recolour a label; 409 if the new name is another label's."""
    label = await get(session, label_id, lock=True)
    if if_match is not None:
        if_match(content_version(label))
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and await _name_taken(session, changes["name"], other_than=label.id):
        raise _taken(changes["name"])
    changed = {key: value for key, value in changes.items() if getattr(label, key) != value}
    for key, value in changed.items():
        setattr(label, key, value)
    if changed:
        outbox.record(session, LabelUpdated(label_id=label.id, changes=changed))
    await _flush_unique(session, label.name)
    return label


async def delete(session: AsyncSession, label_id: uuid.UUID, *, if_match: IfMatch = None) -> None:
    """Delete a label; it disappears from every task that had it."""
    label = await get(session, label_id, lock=True)
    if if_match is not None:
        if_match(content_version(label))
    # The label leaves the tasks that carry it: their representation (and ETag) changes.
    carriers = select(task_labels.c.task_id).where(task_labels.c.label_id == label.id)
    await session.execute(
        sql_update(Task)
        .where(Task.id.in_(carriers))
        .values(version=Task.version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.delete(label)
    outbox.record(session, LabelDeleted(label_id=label.id))
    await session.flush()
