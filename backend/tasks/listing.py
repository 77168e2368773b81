"""Sorting and keyset pagination of task lists, for any allowed sort.

A sort is a list of fields, each ascending or descending (``-``); ``id`` always breaks the last
ties (in the direction of the last field) and NULL due dates come last in either direction.
The cursor holds the sort it was made for, the last row's values of the sort fields and its id;
the next page is every row strictly after that one in the sort order.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, tuple_

from backend.kit.errors import Problem
from backend.kit.pagination import decode_cursor, encode_cursor
from backend.tasks.models import Task

#: Field -> (column, kind of value in the cursor).
SORT_FIELDS: dict[str, tuple[Any, str]] = {
    "created_at": (Task.created_at, "datetime"),
    "updated_at": (Task.updated_at, "datetime"),
    "due_date": (Task.due_date, "date"),
    "priority": (Task.priority, "int"),
    "position": (Task.position, "float"),
    "number": (Task.number, "int"),
    "title": (Task.title, "str"),
}
NULLABLE = frozenset({"due_date"})
DEFAULT_SORT = "created_at"


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    descending: bool

    @property
    def column(self) -> Any:
        return SORT_FIELDS[self.name][0]


class Sort:
    def __init__(self, raw: str) -> None:
        parts = raw.split(",")
        unknown = [p for p in parts if p.removeprefix("-") not in SORT_FIELDS]
        if unknown:
            raise Problem(
                422,
                "invalid-sort",
                f"Unknown sort field(s): {', '.join(repr(u) for u in unknown)}. Allowed: "
                f"{', '.join(SORT_FIELDS)} (prefix '-' for descending), comma-separated.",
                unknown=unknown,
                allowed=list(SORT_FIELDS),
            )
        names = [p.removeprefix("-") for p in parts]
        if len(set(names)) != len(names):
            raise Problem(422, "invalid-sort", "A sort field may appear only once.")
        self.keys = [SortKey(p.removeprefix("-"), p.startswith("-")) for p in parts]
        self.canonical = ",".join(parts)
        self.id_descending = self.keys[-1].descending

    def order_by(self) -> list[Any]:
        order = []
        for key in self.keys:
            clause = key.column.desc() if key.descending else key.column.asc()
            # Nullable columns put NULLs last either way; others keep plain order (index scans).
            order.append(clause.nulls_last() if key.name in NULLABLE else clause)
        order.append(Task.id.desc() if self.id_descending else Task.id.asc())
        return order

    def cursor_after(self, task: Any) -> str:
        """The cursor of the page after ``task`` (a Task or a row with its columns)."""
        values = [_to_json(getattr(task, key.name)) for key in self.keys]
        return encode_cursor([self.canonical, *values, str(task.id)])

    def after(self, cursor: str) -> ColumnElement[bool]:
        """Rows strictly after the one the cursor names, in this sort's order."""
        sort, *raw, raw_id = decode_cursor(cursor, len(self.keys) + 2)
        if sort != self.canonical:
            raise Problem(
                422, "invalid-cursor", "cursor was made for another sort; start from page one"
            )
        values = [_from_json(key, value) for key, value in zip(self.keys, raw, strict=True)]
        row_id = _parse(uuid.UUID, raw_id)
        columns = [(k.column, k.descending, k.name in NULLABLE) for k in self.keys]
        columns.append((Task.id, self.id_descending, False))
        values.append(row_id)
        directions = {desc for _, desc, _ in columns}
        if len(directions) == 1 and not any(nullable for _, _, nullable in columns):
            # One direction, no NULLs: a row comparison, which PostgreSQL serves from an index.
            left, right = tuple_(*(c for c, _, _ in columns)), tuple_(*values)
            return left < right if directions.pop() else left > right
        clauses = []
        for i, (column, descending, nullable) in enumerate(columns):
            value = values[i]
            if value is None:
                continue  # NULLs sort last: nothing comes after NULL in this column
            beyond = column < value if descending else column > value
            if nullable:
                beyond = or_(beyond, column.is_(None))
            same = [
                c.is_(None) if v is None else c == v
                for (c, _, _), v in zip(columns[:i], values[:i], strict=True)
            ]
            clauses.append(and_(*same, beyond))
        return or_(*clauses) if clauses else false()


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    return value


def _invalid() -> Problem:
    return Problem(422, "invalid-cursor", "cursor is not one this API returned")


def _parse(kind: Any, value: Any) -> Any:
    if not isinstance(value, str):
        raise _invalid()
    try:
        return kind(value)
    except ValueError as exc:
        raise _invalid() from exc


def _from_json(key: SortKey, value: Any) -> Any:
    kind = SORT_FIELDS[key.name][1]
    if value is None and key.name in NULLABLE:
        return None
    if kind == "datetime":
        when = _parse(dt.datetime.fromisoformat, value)
        if when.tzinfo is None:
            raise _invalid()
        return when
    if kind == "date":
        return _parse(dt.date.fromisoformat, value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int" and is_number and isinstance(value, int) and abs(value) < 2**31:
        return value
    if kind == "float" and is_number:
        return float(value)
    if kind == "str" and isinstance(value, str) and len(value) <= 500 and "\x00" not in value:
        return value
    raise _invalid()
