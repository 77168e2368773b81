"""Domain events: immutable, past tense, versioned, registered in one mapping (``TYPES``).

An event's fields are its payload. ``aggregate`` names what changed (its type and id): a task's
comments and watchers belong to the task, so they show in the task's activity. A change to the
fields of a type is a new ``version``; consumers read ``version`` before the payload.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    version: ClassVar[int] = 1
    aggregate_type: ClassVar[str]
    #: The payload field that holds the aggregate's id.
    aggregate_field: ClassVar[str]

    def aggregate_id(self) -> uuid.UUID:
        value: uuid.UUID = getattr(self, self.aggregate_field)
        return value

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type = cls.__name__


# --- projects -----------------------------------------------------------------------------------


class _ProjectEvent(DomainEvent):
    aggregate_type = "project"
    aggregate_field = "project_id"
    project_id: uuid.UUID


class ProjectCreated(_ProjectEvent):
    key: str
    name: str


class ProjectUpdated(_ProjectEvent):
    changes: dict[str, Any]


class ProjectArchived(_ProjectEvent):
    archived: bool


class ProjectDeleted(_ProjectEvent):
    key: str


# --- tasks --------------------------------------------------------------------------------------


class _TaskEvent(DomainEvent):
    aggregate_type = "task"
    aggregate_field = "task_id"
    task_id: uuid.UUID
    project_id: uuid.UUID


class TaskCreated(_TaskEvent):
    key: str
    title: str
    status_id: uuid.UUID
    status_category: str
    priority: str
    assignee_id: uuid.UUID | None
    parent_id: uuid.UUID | None


class TaskUpdated(_TaskEvent):
    """Fields other than status and assignee changed (their new values)."""

    changes: dict[str, Any]


class TaskStatusChanged(_TaskEvent):
    from_status_id: uuid.UUID
    to_status_id: uuid.UUID
    from_category: str
    to_category: str


class TaskAssigned(_TaskEvent):
    from_assignee_id: uuid.UUID | None
    to_assignee_id: uuid.UUID | None


class TaskDeleted(_TaskEvent):
    key: str
    status_id: uuid.UUID
    status_category: str


class CommentAdded(_TaskEvent):
    comment_id: uuid.UUID
    author_id: uuid.UUID | None


class CommentEdited(_TaskEvent):
    comment_id: uuid.UUID


class CommentDeleted(_TaskEvent):
    comment_id: uuid.UUID


class WatcherAdded(_TaskEvent):
    user_id: uuid.UUID


class WatcherRemoved(_TaskEvent):
    user_id: uuid.UUID


# --- labels -------------------------------------------------------------------------------------


class _LabelEvent(DomainEvent):
    aggregate_type = "label"
    aggregate_field = "label_id"
    label_id: uuid.UUID


class LabelCreated(_LabelEvent):
    name: str


class LabelUpdated(_LabelEvent):
    changes: dict[str, Any]


class LabelDeleted(_LabelEvent):
    pass


# --- members ------------------------------------------------------------------------------------


class MemberInvited(DomainEvent):
    """No email in the payload: the event log is readable by every member, invites are not."""

    aggregate_type = "invite"
    aggregate_field = "invite_id"
    invite_id: uuid.UUID
    role: str


class InviteRevoked(DomainEvent):
    aggregate_type = "invite"
    aggregate_field = "invite_id"
    invite_id: uuid.UUID


class _UserEvent(DomainEvent):
    aggregate_type = "user"
    aggregate_field = "user_id"
    user_id: uuid.UUID


class MemberJoined(_UserEvent):
    role: str


class MemberUpdated(_UserEvent):
    changes: dict[str, Any]


class MemberDeactivated(_UserEvent):
    pass


# --- machine access -----------------------------------------------------------------------------


class _ApiKeyEvent(DomainEvent):
    """Only the key's id and role: every member can read the event log, while keys (their
    names included) are for owners and admins; never the secret or any part of it."""

    aggregate_type = "api_key"
    aggregate_field = "api_key_id"
    api_key_id: uuid.UUID


class ApiKeyCreated(_ApiKeyEvent):
    role: str


class ApiKeyRevoked(_ApiKeyEvent):
    pass


TYPES: dict[str, type[DomainEvent]] = {
    cls.type: cls
    for cls in (
        ProjectCreated,
        ProjectUpdated,
        ProjectArchived,
        ProjectDeleted,
        TaskCreated,
        TaskUpdated,
        TaskStatusChanged,
        TaskAssigned,
        TaskDeleted,
        CommentAdded,
        CommentEdited,
        CommentDeleted,
        WatcherAdded,
        WatcherRemoved,
        LabelCreated,
        LabelUpdated,
        LabelDeleted,
        MemberInvited,
        InviteRevoked,
        MemberJoined,
        MemberUpdated,
        MemberDeactivated,
        ApiKeyCreated,
        ApiKeyRevoked,
    )
}
