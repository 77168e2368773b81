"""Request and response models of tasks."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from backend.kit.text import FreeText, NotBlankText
from backend.kit.types import InputModel, JsonDate, json_number, omittable

Priority = Literal["none", "low", "medium", "high", "urgent"]
StatusCategory = Literal["todo", "in_progress", "done"]

MAX_LABELS = 20
MAX_ESTIMATE = 100_000
#: Positions are fractions so a client can insert between two tasks; bounded so they stay exact.
MAX_POSITION = 1e15


def _unique(values: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(values)) != len(values):
        raise ValueError("must not contain duplicates")
    return values


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


Title = Annotated[NotBlankText, Field(min_length=1, max_length=500), AfterValidator(_not_blank)]
Description = Annotated[FreeText, Field(max_length=50_000)]
LabelIds = Annotated[
    list[uuid.UUID],
    Field(max_length=MAX_LABELS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
Estimate = Annotated[
    float, Field(ge=0, le=MAX_ESTIMATE, allow_inf_nan=False), BeforeValidator(json_number)
]
Position = Annotated[
    float,
    Field(ge=-MAX_POSITION, le=MAX_POSITION, allow_inf_nan=False),
    BeforeValidator(json_number),
]


class TaskCreate(InputModel):
    title: Title
    description: Description = ""
    status_id: uuid.UUID | None = Field(
        default=None, description="A status of the project; its first status when left out."
    )
    priority: Priority = "none"
    assignee_id: uuid.UUID | None = None
    labels: LabelIds = Field(default_factory=list, description="Label ids (at most 20).")
    due_date: JsonDate | None = None
    start_date: JsonDate | None = None
    parent_id: uuid.UUID | None = Field(
        default=None,
        description="A task of the same project that is not itself a subtask.",
    )
    estimate: Estimate | None = None
    position: Position | None = Field(
        default=None, description="Order within the status; after its last task when left out."
    )


class TaskUpdate(InputModel):
    """Fields left out stay as they are. ``null`` clears assignee_id, due_date, start_date,
    parent_id and estimate, and empties description; it is refused for the others."""

    title: Title | None = omittable()
    description: Description | None = None
    status_id: uuid.UUID | None = omittable()
    priority: Priority | None = omittable()
    assignee_id: uuid.UUID | None = None
    labels: LabelIds | None = omittable(description="Replaces the task's labels.")
    due_date: JsonDate | None = None
    start_date: JsonDate | None = None
    parent_id: uuid.UUID | None = None
    estimate: Estimate | None = None
    position: Position | None = omittable()

    @field_validator("title", "status_id", "priority", "labels", "position", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only an explicit null reaches this (defaults are not validated).
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class LabelChanges(InputModel):
    add: LabelIds = Field(default_factory=list)
    remove: LabelIds = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> LabelChanges:
        if set(self.add) & set(self.remove):
            raise ValueError("a label cannot be both added and removed")
        return self


class BulkSet(InputModel):
    """What to change on every task; at least one field. ``assignee_id: null`` unassigns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    status_id: uuid.UUID | None = omittable()
    assignee_id: uuid.UUID | None = None
    labels: LabelChanges | None = omittable(
        description="Labels to add to and remove from each task (other labels stay).",
    )

    @field_validator("status_id", "labels", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value

    @model_validator(mode="after")
    def _something(self) -> BulkSet:
        if not self.model_fields_set:
            raise ValueError("name at least one of status_id, assignee_id, labels")
        return self


class BulkUpdate(InputModel):
    task_ids: Annotated[
        list[uuid.UUID],
        Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_unique),
    ]
    set: BulkSet


class TaskRead(BaseModel):
    id: uuid.UUID
    key: str = Field(description="The project key and the task number: OPS-42.")
    number: int
    project_id: uuid.UUID
    title: str
    description: str
    status_id: uuid.UUID
    status_category: StatusCategory
    priority: Priority
    assignee_id: uuid.UUID | None
    reporter_id: uuid.UUID | None
    labels: list[uuid.UUID]
    watchers: list[uuid.UUID]
    due_date: dt.date | None
    start_date: dt.date | None
    parent_id: uuid.UUID | None
    estimate: float | None
    position: float
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    version: int = Field(description="Changes on every update; the ETag is built from it.")


class TaskList(BaseModel):
    items: list[TaskRead]
