"""Project and task writes through the API record their domain events, in their transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import assert_problem, login


def _events(sync_engine, tenant, after: int = 0) -> list[dict[str, Any]]:
    with sync_engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT seq, type, aggregate_type, aggregate_id, actor_type, actor_id, payload "
                f'FROM "{tenant.record.schema_name}".outbox WHERE seq > :after ORDER BY seq'
            ),
            {"after": after},
        ).mappings()
        return [dict(r) for r in rows]


def _last(sync_engine, tenant) -> int:
    found = _events(sync_engine, tenant)
    return found[-1]["seq"] if found else 0


async def test_project_and_task_writes_record_their_events(client, make_tenant, sync_engine):
    tenant = make_tenant("erec")
    headers = await login(client, tenant)
    me = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]

    project = (
        await client.post("/api/v1/projects", json={"name": "Events"}, headers=headers)
    ).json()
    statuses = (
        await client.get(f"/api/v1/projects/{project['id']}/statuses", headers=headers)
    ).json()
    done = next(s["id"] for s in statuses if s["category"] == "done")
    created = (
        await client.post(
            f"/api/v1/projects/{project['id']}/tasks", json={"title": "one"}, headers=headers
        )
    ).json()
    other = (
        await client.post(
            f"/api/v1/projects/{project['id']}/tasks", json={"title": "two"}, headers=headers
        )
    ).json()
    [p_created, t_created, _] = _events(sync_engine, tenant)
    assert p_created["type"] == "ProjectCreated" and p_created["payload"]["key"] == project["key"]
    assert t_created["type"] == "TaskCreated" and t_created["payload"]["key"] == created["key"]
    assert t_created["aggregate_type"] == "task" and str(t_created["aggregate_id"]) == created["id"]
    assert t_created["actor_type"] == "user" and str(t_created["actor_id"]) == me

    mark = _last(sync_engine, tenant)
    resp = await client.patch(
        f"/api/v1/tasks/{created['id']}",
        json={"status_id": done, "assignee_id": me, "title": "one!"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    types = {e["type"]: e for e in _events(sync_engine, tenant, mark)}
    assert set(types) == {"TaskStatusChanged", "TaskAssigned", "TaskUpdated"}
    assert types["TaskStatusChanged"]["payload"]["to_category"] == "done"
    assert types["TaskAssigned"]["payload"]["to_assignee_id"] == me
    assert types["TaskUpdated"]["payload"]["changes"] == {"title": "one!"}

    mark = _last(sync_engine, tenant)
    refused = await client.patch(
        f"/api/v1/tasks/{created['id']}", json={"estimate": "3"}, headers=headers
    )
    assert_problem(refused, 422)
    unchanged = await client.patch(
        f"/api/v1/tasks/{created['id']}", json={"title": "one!"}, headers=headers
    )
    assert unchanged.status_code == 200
    assert _events(sync_engine, tenant, mark) == []  # refused or no-op writes record nothing

    bulk = await client.post(
        "/api/v1/tasks/bulk",
        json={"task_ids": [created["id"], other["id"]], "set": {"status_id": done}},
        headers=headers,
    )
    assert bulk.status_code == 200, bulk.text
    moved = _events(sync_engine, tenant, mark)
    assert [e["type"] for e in moved] == ["TaskStatusChanged"]  # the first one was done already
    assert str(moved[0]["aggregate_id"]) == other["id"]

    mark = _last(sync_engine, tenant)
    assert (await client.delete(f"/api/v1/tasks/{other['id']}", headers=headers)).status_code == 204
    archived = await client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"archived": True, "name": "Events 2"},
        headers=headers,
    )
    assert archived.status_code == 200, archived.text
    assert (
        await client.delete(f"/api/v1/projects/{project['id']}", headers=headers)
    ).status_code == 204
    tail = _events(sync_engine, tenant, mark)
    assert [e["type"] for e in tail] == [
        "TaskDeleted",
        "ProjectArchived",
        "ProjectUpdated",
        "ProjectDeleted",
    ]
    assert tail[0]["payload"]["key"] == other["key"]
    assert tail[2]["payload"]["changes"] == {"name": "Events 2"}


async def test_a_tenants_writes_land_in_its_own_outbox_only(client, make_tenant, sync_engine):
    a, b = make_tenant("erec-a"), make_tenant("erec-b")
    headers_a = await login(client, a)
    before_b = _events(sync_engine, b)
    await client.post("/api/v1/projects", json={"name": "Only A"}, headers=headers_a)
    assert [e["type"] for e in _events(sync_engine, a)] == ["ProjectCreated"]
    assert _events(sync_engine, b) == before_b


async def test_comment_label_watcher_and_member_writes_record_their_events(
    client, make_tenant, sync_engine, add_user
):
    tenant = make_tenant("erec-more")
    headers = await login(client, tenant)
    project = (await client.post("/api/v1/projects", json={"name": "More"}, headers=headers)).json()
    task = (
        await client.post(
            f"/api/v1/projects/{project['id']}/tasks", json={"title": "t"}, headers=headers
        )
    ).json()
    member_id, _ = add_user(tenant, "member")
    mark = _last(sync_engine, tenant)

    comment = await client.post(
        f"/api/v1/tasks/{task['id']}/comments", json={"body": "hello"}, headers=headers
    )
    assert comment.status_code == 201, comment.text
    cid = comment.json()["id"]
    assert (
        await client.patch(f"/api/v1/comments/{cid}", json={"body": "hi"}, headers=headers)
    ).status_code == 200
    assert (await client.delete(f"/api/v1/comments/{cid}", headers=headers)).status_code == 204
    label = await client.post("/api/v1/labels", json={"name": "urgent"}, headers=headers)
    assert label.status_code == 201, label.text
    watch = await client.put(f"/api/v1/tasks/{task['id']}/watchers/{member_id}", headers=headers)
    assert watch.status_code in (200, 201, 204), watch.text
    unwatch = await client.delete(
        f"/api/v1/tasks/{task['id']}/watchers/{member_id}", headers=headers
    )
    assert unwatch.status_code == 204, unwatch.text
    invite = await client.post(
        "/api/v1/invites",
        json={"email": "new.person@example.com", "role": "member"},
        headers=headers,
    )
    assert invite.status_code == 201, invite.text
    role = await client.patch(
        f"/api/v1/users/{member_id}", json={"role": "viewer"}, headers=headers
    )
    assert role.status_code == 200, role.text
    assert (await client.delete(f"/api/v1/users/{member_id}", headers=headers)).status_code in (
        200,
        204,
    )

    events = _events(sync_engine, tenant, mark)
    types = [e["type"] for e in events]
    for expected in (
        "CommentAdded",
        "CommentEdited",
        "CommentDeleted",
        "LabelCreated",
        "WatcherAdded",
        "WatcherRemoved",
        "MemberInvited",
        "MemberUpdated",
        "MemberDeactivated",
    ):
        assert expected in types, types
    comments = [e for e in events if e["type"].startswith("Comment")]
    assert all(str(e["aggregate_id"]) == task["id"] for e in comments)  # part of the task
    invited = next(e for e in events if e["type"] == "MemberInvited")
    assert "new.person@example.com" not in str(invited["payload"])  # no email in the log


async def test_api_keys_record_created_and_revoked_without_their_secret(
    client, make_tenant, sync_engine
):
    tenant = make_tenant("ekey")
    headers = await login(client, tenant)
    mark = _last(sync_engine, tenant)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "deploy-prod", "role": "member"}, headers=headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    [event] = _events(sync_engine, tenant, mark)
    assert event["type"] == "ApiKeyCreated" and event["aggregate_type"] == "api_key"
    assert str(event["aggregate_id"]) == key["id"] and event["payload"]["role"] == "member"
    # Every member reads the event log: neither the secret (nor a part of it) nor the name.
    text_of = str(event)
    assert key["key"] not in text_of and key["prefix"] not in text_of
    assert "deploy-prod" not in text_of

    mark = _last(sync_engine, tenant)
    for _ in range(2):  # revoking again is a no-op: one event
        resp = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)
        assert resp.status_code == 204
    assert [e["type"] for e in _events(sync_engine, tenant, mark)] == ["ApiKeyRevoked"]
    listed = await client.get(
        "/api/v1/events", params={"aggregate_type": "api_key"}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    newest_first = [e["type"] for e in listed.json()["items"]]
    assert newest_first == ["ApiKeyRevoked", "ApiKeyCreated"]
