"""The event log (GET /api/v1/events) and a task's activity: filters, pages, errors, tenants."""

from __future__ import annotations

import datetime as dt
import uuid

from backend.events import outbox
from backend.events.types import CommentAdded, ProjectCreated, TaskUpdated
from tenancy.context import bind_tenant
from tenancy.db import sync_tenant_session
from tests.conftest import assert_problem, bearer, login, login_as


def _record(sync_engine, tenant, *events) -> None:
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        for event in events:
            outbox.record(session, event)
        session.commit()


async def _task(client, headers) -> tuple[str, str]:
    project = await client.post("/api/v1/projects", json={"name": "Log"}, headers=headers)
    project_id = project.json()["id"]
    task = await client.post(
        f"/api/v1/projects/{project_id}/tasks", json={"title": "logged"}, headers=headers
    )
    return project_id, task.json()["id"]


async def test_the_log_lists_newest_first_with_filters_and_pages(client, make_tenant, sync_engine):
    tenant = make_tenant("elog")
    headers = await login(client, tenant)
    project_id, task_id = await _task(client, headers)
    pid, tid = uuid.UUID(project_id), uuid.UUID(task_id)
    start = dt.datetime.now(dt.UTC)
    _record(sync_engine, tenant, ProjectCreated(project_id=pid, key="LOG", name="Log"))
    _record(
        sync_engine,
        tenant,
        *(TaskUpdated(task_id=tid, project_id=pid, changes={"title": f"t{i}"}) for i in range(3)),
    )
    page = (
        await client.get("/api/v1/events", params={"after": start.isoformat()}, headers=headers)
    ).json()
    mine = page["items"]
    assert [e["type"] for e in mine] == ["TaskUpdated"] * 3 + ["ProjectCreated"]
    assert [e["payload"]["changes"]["title"] for e in mine[:3]] == ["t2", "t1", "t0"]
    first = mine[0]
    assert set(first) == {
        "id",
        "type",
        "version",
        "tenant",
        "occurred_at",
        "actor",
        "aggregate",
        "payload",
        "trace",
        "seq",
    }
    assert first["tenant"] == str(tenant.id) and first["version"] == 1
    assert first["aggregate"] == {"type": "task", "id": task_id}
    assert first["actor"] == {"type": "system", "id": None}

    by_type = await client.get(
        "/api/v1/events",
        params={"type": "ProjectCreated", "after": start.isoformat()},
        headers=headers,
    )
    assert [e["type"] for e in by_type.json()["items"]] == ["ProjectCreated"]
    by_aggregate = await client.get(
        "/api/v1/events",
        params={"aggregate_type": "task", "aggregate_id": task_id, "after": start.isoformat()},
        headers=headers,
    )
    assert len(by_aggregate.json()["items"]) == 3
    before = await client.get(
        "/api/v1/events",
        params={"before": start.isoformat(), "type": "TaskUpdated"},
        headers=headers,
    )
    assert before.json()["items"] == []

    seen = []
    cursor = None
    while True:
        params = {"limit": 2, "after": start.isoformat()}
        if cursor:
            params["cursor"] = cursor
        resp = (await client.get("/api/v1/events", params=params, headers=headers)).json()
        seen += [e["id"] for e in resp["items"]]
        cursor = resp["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in mine]


async def test_a_tasks_activity_holds_its_events_and_comments(
    client, make_tenant, sync_engine, add_user
):
    tenant = make_tenant("eact")
    headers = await login(client, tenant)
    project_id, task_id = await _task(client, headers)
    pid, tid = uuid.UUID(project_id), uuid.UUID(task_id)
    _, other_task = await _task(client, headers)
    _record(
        sync_engine,
        tenant,
        TaskUpdated(task_id=tid, project_id=pid, changes={"title": "x"}),
        CommentAdded(task_id=tid, project_id=pid, comment_id=uuid.uuid4(), author_id=None),
        TaskUpdated(task_id=uuid.UUID(other_task), project_id=pid, changes={"title": "y"}),
    )
    _, viewer = add_user(tenant, "viewer")
    as_viewer = bearer(tenant, (await login_as(client, tenant, viewer))["access_token"])
    resp = await client.get(f"/api/v1/tasks/{task_id}/activity", headers=as_viewer)
    assert resp.status_code == 200, resp.text
    types = [e["type"] for e in resp.json()["items"]]
    assert types[:2] == ["CommentAdded", "TaskUpdated"]
    assert all(e["aggregate"]["id"] == task_id for e in resp.json()["items"])
    assert_problem(
        await client.get(f"/api/v1/tasks/{uuid.uuid4()}/activity", headers=headers),
        404,
        "task-not-found",
    )


async def test_bad_log_queries_are_422(client, make_tenant):
    tenant = make_tenant("ebad")
    headers = await login(client, tenant)
    for params, code in (
        ({"typo": "1"}, "invalid-parameter"),
        ({"type": "NoSuchEvent"}, "invalid-parameter"),
        ({"after": "2026-01-01T00:00:00"}, None),
        ({"before": "0.5"}, None),
        ({"after": "yesterday"}, None),
        ({"aggregate_type": "spaceship"}, None),
        ({"aggregate_id": "not-a-uuid"}, None),
        ({"limit": "0"}, None),
        ({"limit": "101"}, None),
        ({"cursor": "garbage"}, "invalid-cursor"),
        ({"type": "TaskCreated", "type ": "x"}, "invalid-parameter"),
    ):
        resp = await client.get("/api/v1/events", params=params, headers=headers)
        assert_problem(resp, 422, code)


async def test_tenants_never_see_each_others_events(client, make_tenant, sync_engine):
    a, b = make_tenant("ea"), make_tenant("eb")
    headers_a, headers_b = await login(client, a), await login(client, b)
    project_id, task_id = await _task(client, headers_a)
    _record(
        sync_engine,
        a,
        TaskUpdated(task_id=uuid.UUID(task_id), project_id=uuid.UUID(project_id), changes={}),
    )
    seen_by_b = (await client.get("/api/v1/events", headers=headers_b)).json()["items"]
    assert all(e["tenant"] == str(b.id) for e in seen_by_b)
    assert task_id not in {e["aggregate"]["id"] for e in seen_by_b}
    assert_problem(await client.get(f"/api/v1/tasks/{task_id}/activity", headers=headers_b), 404)
    # A's token at B is refused before anything is read.
    assert_problem(
        await client.get(
            "/api/v1/events",
            headers={"X-Tenant": b.slug, "Authorization": headers_a["Authorization"]},
        ),
        401,
    )
