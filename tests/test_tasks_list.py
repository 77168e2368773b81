"""Task lists: every filter, full-text search, sorts and keyset pagination over 250 tasks."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import insert

from backend.tasks.models import Task, task_labels
from tenancy.db import translate_map
from tests.conftest import assert_problem, login
from tests.task_helpers import add_labels, project_with_statuses

N = 250
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SORTS = [
    "created_at",
    "-created_at",
    "-priority,due_date",
    "due_date",
    "-due_date",
    "title,-number",
    "-updated_at,position",
    "position,-priority,due_date",
    "number",
    "-title,due_date,-created_at",
]


@dataclass
class Dataset:
    headers: dict[str, str]
    rows: list[dict[str, Any]]
    projects: list[str]
    statuses: dict[str, dict[str, str]]  # project id -> category -> status id
    users: list[str]
    labels: list[str]


@pytest.fixture(scope="module")
async def data(client, make_tenant, add_user, sync_engine) -> Dataset:
    """250 tasks in two projects with ties in every sort field and NULL due dates."""
    tenant = make_tenant("tlist")
    headers = await login(client, tenant)
    (pa, sa), (pb, sb) = [
        await project_with_statuses(client, headers, name=name) for name in ("Alpha", "Beta")
    ]
    users = [str(add_user(tenant, "member")[0]) for _ in range(2)]
    labels = add_labels(sync_engine, tenant, "red", "blue")
    categories = ("todo", "in_progress", "done")
    rows: list[dict[str, Any]] = []
    for i in range(N):
        project, statuses = (pa, sa) if i < 150 else (pb, sb)
        category = categories[i % 3]
        rows.append(
            {
                "id": uuid.uuid4(),
                "project_id": uuid.UUID(project["id"]),
                "number": i + 1 if i < 150 else i - 149,
                "title": f"t{i % 17:02d}",
                "description": {0: "kubernetes migration", 1: "postgres upgrade"}.get(i % 25, ""),
                "status_id": uuid.UUID(statuses[category]),
                "status_category": category,
                "priority": i % 5,
                "assignee_id": uuid.UUID(users[i % 4]) if i % 4 < 2 else None,
                "due_date": None if i % 7 == 0 else dt.date(2026, 3, 1) + dt.timedelta(i % 11),
                "parent_id": rows[0]["id"] if 1 <= i <= 9 else None,
                "position": float(i % 13) + 0.5,
                "created_at": BASE + dt.timedelta(seconds=i // 3),
                "updated_at": BASE + dt.timedelta(minutes=(i * 7) % 50),
            }
        )
    with sync_engine.begin() as conn:
        bound = conn.execution_options(
            schema_translate_map=translate_map(tenant.record.schema_name)
        )
        bound.execute(insert(Task), rows)
        links = [
            {"task_id": r["id"], "label_id": uuid.UUID(label)}
            for i, r in enumerate(rows)
            for label in ([labels[0]] if i % 5 == 0 else []) + ([labels[1]] if i % 10 == 0 else [])
        ]
        bound.execute(insert(task_labels), links)
    for i, r in enumerate(rows):
        r["labels"] = ([labels[0]] if i % 5 == 0 else []) + ([labels[1]] if i % 10 == 0 else [])
    return Dataset(headers, rows, [pa["id"], pb["id"]], {pa["id"]: sa, pb["id"]: sb}, users, labels)


def expected_order(rows: list[dict[str, Any]], sort: str) -> list[str]:
    keys = [(part.removeprefix("-"), part.startswith("-")) for part in sort.split(",")]

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for name, descending in keys:
            x, y = a[name], b[name]
            if x == y:
                continue
            if x is None or y is None:  # NULLs last in either direction
                return 1 if x is None else -1
            result = -1 if x < y else 1
            return -result if descending else result
        result = -1 if a["id"] < b["id"] else 1
        return -result if keys[-1][1] else result

    return [str(r["id"]) for r in sorted(rows, key=functools.cmp_to_key(compare))]


async def walk(client, headers, query: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(N + 1):
        url = f"/api/v1/tasks?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= limit
        ids += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination does not end")


@pytest.mark.parametrize("sort", SORTS)
async def test_every_sort_pages_through_all_tasks_in_order(client, data, sort):
    expected = expected_order(data.rows, sort)
    assert await walk(client, data.headers, f"&sort={sort}", 23) == expected
    # The same query unpaged (100 tasks of one project in one page) equals the paged walk.
    beta = data.projects[1]
    query = f"&sort={sort}&project_id={beta}"
    one_page = await client.get(f"/api/v1/tasks?limit=100{query}", headers=data.headers)
    assert one_page.json()["next_cursor"] is None
    unpaged = [t["id"] for t in one_page.json()["items"]]
    assert unpaged == await walk(client, data.headers, query, 7)
    assert unpaged == expected_order([r for r in data.rows if str(r["project_id"]) == beta], sort)


async def test_default_sort_and_page_contents(client, data):
    page = (await client.get("/api/v1/tasks?limit=5", headers=data.headers)).json()
    assert [t["id"] for t in page["items"]] == expected_order(data.rows, "created_at")[:5]
    by_id = {str(r["id"]): r for r in data.rows}
    for task in page["items"]:
        row = by_id[task["id"]]
        assert task["key"] == f"ALPH-{row['number']}" and task["labels"] == sorted(row["labels"])
        assert task["priority"] == ("none", "low", "medium", "high", "urgent")[row["priority"]]
        assert task["status_category"] == row["status_category"]
        assert task["due_date"] == (row["due_date"] and row["due_date"].isoformat())
        assert task["position"] == row["position"] and task["reporter_id"] is None
    assert by_id[page["items"][0]["id"]]["created_at"] == BASE


async def test_filters(client, data):
    rows = data.rows
    pa, pb = data.projects
    todo_b = data.statuses[pb]["todo"]
    cases: list[tuple[str, list[dict[str, Any]]]] = [
        (f"project_id={pb}", [r for r in rows if str(r["project_id"]) == pb]),
        (f"status={todo_b}", [r for r in rows if str(r["status_id"]) == todo_b]),
        ("status_category=done", [r for r in rows if r["status_category"] == "done"]),
        (
            f"assignee_id={data.users[1]}",
            [r for r in rows if str(r["assignee_id"]) == data.users[1]],
        ),
        (f"label={data.labels[1]}", [r for r in rows if data.labels[1] in r["labels"]]),
        (
            "due_before=2026-03-03",
            [r for r in rows if r["due_date"] and r["due_date"] < dt.date(2026, 3, 3)],
        ),
        (
            "due_after=2026-03-09",
            [r for r in rows if r["due_date"] and r["due_date"] > dt.date(2026, 3, 9)],
        ),
        (f"parent_id={rows[0]['id']}", rows[1:10]),
        ("q=kubernetes", [r for r in rows if "kubernetes" in r["description"]]),
        ("q=KUBERNETES or postgres", [r for r in rows if r["description"]]),
        ('q="migration kubernetes"', []),
        ("q=t03", [r for r in rows if r["title"] == "t03"]),
        (
            f"project_id={pa}&status_category=todo&label={data.labels[0]}&due_after=2026-03-01",
            [
                r
                for r in rows
                if str(r["project_id"]) == pa
                and r["status_category"] == "todo"
                and data.labels[0] in r["labels"]
                and r["due_date"]
                and r["due_date"] > dt.date(2026, 3, 1)
            ],
        ),
    ]
    for query, matching in cases:
        assert matching or query.startswith('q="'), query
        got = await walk(client, data.headers, f"&{query}", 100)
        assert got == expected_order(matching, "created_at"), query
    # Search syntax a user may type never fails.
    for q in ("(:*&!", "-", '"', "a & b | !c", "é ü"):
        resp = await client.get("/api/v1/tasks", params={"q": q}, headers=data.headers)
        assert resp.status_code == 200, (q, resp.text)


async def test_unknown_filters_sorts_and_bad_values_are_422(client, data):
    h = data.headers
    body = assert_problem(await client.get("/api/v1/tasks?assigne_id=x&foo=1", headers=h), 422)
    assert body["unknown"] == ["assigne_id", "foo"]
    body = assert_problem(await client.get("/api/v1/tasks?sort=-bogus,title,id", headers=h), 422)
    assert body["unknown"] == ["-bogus", "id"] and "priority" in body["allowed"]
    for query in (
        "sort=title,-title",
        "sort=",
        "sort=title,",
        "limit=0",
        "limit=101",
        "limit=true",
        "status=nope",
        "status_category=later",
        "due_before=tomorrow",
        "q=",
        "q=" + "x" * 201,
        "cursor=garbage",
        "cursor=W10",
        "status_category=done&status_category=todo",
    ):
        resp = await client.get(f"/api/v1/tasks?{query}", headers=h)
        assert resp.status_code == 422, (query, resp.text)
        assert_problem(resp, 422)
    page = (await client.get("/api/v1/tasks?limit=2&sort=title", headers=h)).json()
    # A cursor belongs to its sort.
    resp = await client.get(f"/api/v1/tasks?sort=number&cursor={page['next_cursor']}", headers=h)
    assert_problem(resp, 422, "invalid-cursor")
    resp = await client.get("/api/v1/tasks", params={"q": "a\x00b"}, headers=h)
    assert_problem(resp, 422)
