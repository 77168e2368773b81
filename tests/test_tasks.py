"""Tasks: create/read/update/delete, human keys, validation, subtasks, dates, statuses, ETags,
cache invalidation and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tenancy import keys
from tests.conftest import assert_problem, bearer, login, login_as
from tests.task_helpers import add_labels, new_task, project_with_statuses


async def test_create_read_update_delete(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("tcrud")
    headers = await login(client, tenant)
    project, statuses = await project_with_statuses(client, headers, key="OPS")
    assignee, _ = add_user(tenant, "member")
    bug, ui = add_labels(sync_engine, tenant, "bug", "ui")
    resp = await client.post(
        f"/api/v1/projects/{project['id']}/tasks",
        json={
            "title": "  Fix login  ",
            "description": "It breaks",
            "priority": "high",
            "assignee_id": str(assignee),
            "labels": [ui, bug],
            "start_date": "2026-12-01",
            "due_date": "2026-12-03",
            "estimate": 2.5,
        },
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert resp.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert resp.headers["etag"] == '"v1"'
    assert task["key"] == "OPS-1" and task["number"] == 1
    assert task["title"] == "Fix login" and task["priority"] == "high"
    assert task["status_id"] == statuses["todo"] and task["status_category"] == "todo"
    assert sorted(task["labels"]) == sorted([bug, ui]) and task["watchers"] == []
    assert task["reporter_id"] is not None and task["completed_at"] is None
    assert task["position"] == 1.0 and task["parent_id"] is None
    second = await new_task(client, headers, project["id"])
    assert second["key"] == "OPS-2" and second["position"] == 2.0

    url = f"/api/v1/tasks/{task['id']}"
    read = await client.get(url, headers=headers)
    assert read.status_code == 200 and read.json() == task
    patch = {"assignee_id": None, "due_date": None, "estimate": None, "labels": [bug]}
    changed = await client.patch(url, json=patch, headers=headers)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["assignee_id"] is None and body["due_date"] is None and body["estimate"] is None
    assert body["labels"] == [bug] and body["version"] == 2 and body["start_date"] == "2026-12-01"
    assert changed.headers["etag"] == '"v2"'
    # Only labels change: the version (ETag) moves all the same.
    relabelled = await client.patch(url, json={"labels": []}, headers=headers)
    assert relabelled.json()["labels"] == [] and relabelled.json()["version"] == 3
    for field in ("title", "status_id", "priority", "labels"):
        refused = assert_problem(await client.patch(url, json={field: None}, headers=headers), 422)
        assert [e["field"] for e in refused["errors"]] == [f"body.{field}"]
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert_problem(await client.get(url, headers=headers), 404, "task-not-found")
    assert_problem(await client.delete(url, headers=headers), 404)


async def test_keys_are_unique_and_gap_free_under_concurrent_creates(client, make_tenant):
    tenant = make_tenant("tkeys")
    headers = await login(client, tenant)
    project, _ = await project_with_statuses(client, headers, key="RACE")
    url = f"/api/v1/projects/{project['id']}/tasks"
    # One invalid create in the middle: refused before a number is taken.
    bodies = [{"title": f"t{i}"} for i in range(20)] + [
        {"title": "x", "parent_id": str(uuid.uuid4())}
    ]
    results = await asyncio.gather(*(client.post(url, json=b, headers=headers) for b in bodies))
    assert [r.status_code for r in results] == [201] * 20 + [422]
    numbers = sorted(r.json()["number"] for r in results[:20])
    assert numbers == list(range(1, 21))
    assert {r.json()["key"] for r in results[:20]} == {f"RACE-{n}" for n in range(1, 21)}
    assert (await new_task(client, headers, project["id"]))["key"] == "RACE-21"


async def test_reference_checks_limits_and_strict_types(client, make_tenant, sync_engine):
    tenant, other = make_tenant("tref"), make_tenant("trefo")
    headers, other_headers = await login(client, tenant), await login(client, other)
    project, _ = await project_with_statuses(client, headers)
    foreign, foreign_statuses = await project_with_statuses(client, other_headers)
    [label] = add_labels(sync_engine, tenant, "l")
    url = f"/api/v1/projects/{project['id']}/tasks"
    bad_bodies = {
        "title": [
            {"title": None},
            {"title": ""},
            {"title": "   "},
            {"title": "x" * 501},
            {"title": "a\x00"},
        ],
        "description": [{"description": "x" * 50_001}],
        "priority": [{"priority": "critical"}, {"priority": 1}],
        "estimate": [{"estimate": -1}, {"estimate": 100_001}, {"estimate": "3"}],
        "labels": [{"labels": [label, label]}, {"labels": [str(uuid.uuid4()) for _ in range(21)]}],
        "position": [{"position": "1"}, {"position": False}],
        "due_date": [{"due_date": 20261201}, {"due_date": "tomorrow"}],
        "extra": [{"owner": "me"}],
    }
    for field, bodies in bad_bodies.items():
        for body in bodies:
            resp = await client.post(url, json={"title": "t", **body}, headers=headers)
            assert resp.status_code == 422, (field, body, resp.text)
    assert_problem(await client.post(url, json={}, headers=headers), 422)
    for number in (False, "3"):
        resp = await client.post(url, json={"title": "t", "estimate": number}, headers=headers)
        assert_problem(resp, 422)
    ok = await client.post(
        url, json={"title": "t", "estimate": 2.0, "position": 3}, headers=headers
    )
    assert ok.status_code == 201 and ok.json()["estimate"] == 2.0 and ok.json()["position"] == 3.0
    # Ids that exist only in another tenant (or nowhere) are 422 with one entry per field.
    missing = str(uuid.uuid4())
    resp = await client.post(
        url,
        json={
            "title": "t",
            "status_id": foreign_statuses["todo"],
            "assignee_id": missing,
            "labels": [label, missing],
            "parent_id": missing,
        },
        headers=headers,
    )
    body = assert_problem(resp, 422, "invalid-reference")
    assert {e["field"] for e in body["errors"]} == {
        "body.status_id",
        "body.assignee_id",
        "body.labels",
        "body.parent_id",
    }
    assert body["errors"][2]["missing"] == [missing]
    # A project of another tenant is 404 (before the body is even looked at).
    resp = await client.post(f"/api/v1/projects/{foreign['id']}/tasks", json={}, headers=headers)
    assert_problem(resp, 404, "project-not-found")
    listed = await client.get("/api/v1/tasks", headers=headers)
    assert [t["id"] for t in listed.json()["items"]] == [ok.json()["id"]]


async def test_subtasks_dates_and_archived_projects(client, make_tenant):
    tenant = make_tenant("tsub")
    headers = await login(client, tenant)
    project, _ = await project_with_statuses(client, headers)
    other, _ = await project_with_statuses(client, headers, name="Other")
    parent = await new_task(client, headers, project["id"])
    child = await new_task(client, headers, project["id"], parent_id=parent["id"])
    assert child["parent_id"] == parent["id"]
    url = f"/api/v1/projects/{project['id']}/tasks"

    async def refused(resp, field="body.parent_id"):
        # Rules the schema states are validation errors; rules about stored data are not.
        body = assert_problem(resp, 422)
        assert body["type"].rsplit("/", 1)[1] in ("validation-error", "invalid-reference"), body
        assert [e["field"] for e in body["errors"]] == [field], body

    # A subtask cannot have subtasks; a parent cannot become a subtask; same project only.
    await refused(
        await client.post(url, json={"title": "g", "parent_id": child["id"]}, headers=headers)
    )
    loner = await new_task(client, headers, project["id"])
    parent_url = f"/api/v1/tasks/{parent['id']}"
    await refused(await client.patch(parent_url, json={"parent_id": loner["id"]}, headers=headers))
    await refused(await client.patch(parent_url, json={"parent_id": parent["id"]}, headers=headers))
    foreign_parent = await new_task(client, headers, other["id"])
    await refused(
        await client.patch(
            f"/api/v1/tasks/{loner['id']}",
            json={"parent_id": foreign_parent["id"]},
            headers=headers,
        )
    )
    moved = await client.patch(
        f"/api/v1/tasks/{loner['id']}", json={"parent_id": parent["id"]}, headers=headers
    )
    assert moved.status_code == 200 and moved.json()["parent_id"] == parent["id"]
    cleared = await client.patch(
        f"/api/v1/tasks/{loner['id']}", json={"parent_id": None}, headers=headers
    )
    assert cleared.json()["parent_id"] is None

    # Dates: due cannot precede start, also against the stored value on PATCH.
    body = {"title": "d", "start_date": "2026-05-02", "due_date": "2026-05-01"}
    await refused(await client.post(url, json=body, headers=headers), "body.due_date")
    dated = await new_task(client, headers, project["id"], start_date="2026-05-02")
    dated_url = f"/api/v1/tasks/{dated['id']}"
    await refused(
        await client.patch(dated_url, json={"due_date": "2026-05-01"}, headers=headers),
        "body.due_date",
    )
    same_day = await client.patch(dated_url, json={"due_date": "2026-05-02"}, headers=headers)
    assert same_day.status_code == 200

    # Deleting a parent deletes its subtasks.
    assert (await client.delete(parent_url, headers=headers)).status_code == 204
    assert_problem(await client.get(f"/api/v1/tasks/{child['id']}", headers=headers), 404)

    # Archived project: no new tasks.
    archived = await client.patch(
        f"/api/v1/projects/{project['id']}", json={"archived": True}, headers=headers
    )
    assert archived.status_code == 200
    assert_problem(
        await client.post(url, json={"title": "late"}, headers=headers), 409, "project-archived"
    )


async def test_status_moves_and_completed_at(client, make_tenant):
    tenant = make_tenant("tstat")
    headers = await login(client, tenant)
    project, statuses = await project_with_statuses(client, headers)
    other, other_statuses = await project_with_statuses(client, headers, name="Other")
    done_first = await new_task(client, headers, project["id"], status_id=statuses["done"])
    assert done_first["completed_at"] is not None and done_first["position"] == 1.0
    task = await new_task(client, headers, project["id"])
    url = f"/api/v1/tasks/{task['id']}"
    started = await client.patch(url, json={"status_id": statuses["in_progress"]}, headers=headers)
    assert started.json()["status_category"] == "in_progress"
    assert started.json()["completed_at"] is None and started.json()["position"] == 1.0
    done = (await client.patch(url, json={"status_id": statuses["done"]}, headers=headers)).json()
    assert done["status_category"] == "done" and done["completed_at"] is not None
    assert done["position"] == 2.0  # after the last task of the status it entered
    # Another change while done keeps the completion time.
    renamed = (await client.patch(url, json={"title": "renamed"}, headers=headers)).json()
    assert renamed["completed_at"] == done["completed_at"]
    reopened = await client.patch(
        url, json={"status_id": statuses["todo"], "position": 0.5}, headers=headers
    )
    assert reopened.json()["completed_at"] is None and reopened.json()["position"] == 0.5
    resp = await client.patch(url, json={"status_id": other_statuses["todo"]}, headers=headers)
    body = assert_problem(resp, 422)
    assert [e["field"] for e in body["errors"]] == ["body.status_id"]
    assert (await client.get(url, headers=headers)).json()["project_id"] == project["id"]
    assert other["id"] != project["id"]


async def test_etags_if_match_and_if_none_match(client, make_tenant):
    tenant = make_tenant("tetag")
    headers = await login(client, tenant)
    project, _ = await project_with_statuses(client, headers)
    task = await new_task(client, headers, project["id"])
    url = f"/api/v1/tasks/{task['id']}"
    tag = (await client.get(url, headers=headers)).headers["etag"]
    assert tag == '"v1"'
    not_modified = await client.get(url, headers={**headers, "If-None-Match": tag})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == tag
    assert (await client.get(url, headers={**headers, "If-None-Match": '"v9"'})).status_code == 200
    changed = await client.patch(url, json={"title": "b"}, headers={**headers, "If-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] == '"v2"'
    stale = await client.patch(url, json={"title": "c"}, headers={**headers, "If-Match": tag})
    assert_problem(stale, 412, "precondition-failed")
    assert_problem(await client.delete(url, headers={**headers, "If-Match": tag}), 412)
    assert (await client.get(url, headers=headers)).json()["title"] == "b"
    assert (await client.delete(url, headers={**headers, "If-Match": '"v2"'})).status_code == 204


async def test_list_etag_moves_with_any_change_to_the_page(client, make_tenant):
    tenant = make_tenant("tlistetag")
    headers = await login(client, tenant)
    project, _ = await project_with_statuses(client, headers)
    first = await new_task(client, headers, project["id"])
    await new_task(client, headers, project["id"])
    url = f"/api/v1/tasks?project_id={project['id']}&limit=1"

    async def tag() -> str:
        resp = await client.get(url, headers=headers)
        assert resp.status_code == 200
        return resp.headers["etag"]

    before = await tag()
    assert before == await tag()  # the same page, the same tag
    again = await client.get(url, headers={**headers, "If-None-Match": before})
    assert again.status_code == 304 and again.headers["etag"] == before and not again.content
    weak = await client.get(url, headers={**headers, "If-None-Match": f"W/{before}"})
    assert weak.status_code == 304
    # Each change to what the page shows moves the tag: a field, a watcher, the next cursor.
    tags = [before]
    task_url = f"/api/v1/tasks/{first['id']}"
    resp = await client.patch(task_url, json={"title": "renamed"}, headers=headers)
    assert resp.status_code == 200
    tags.append(await tag())
    me = (await client.get("/api/v1/users", headers=headers)).json()["items"][0]["id"]
    resp = await client.put(f"{task_url}/watchers/{me}", headers=headers)
    assert resp.status_code == 204, resp.text
    tags.append(await tag())
    await new_task(client, headers, project["id"])  # a third task on the unlimited page
    full = await client.get(f"/api/v1/tasks?project_id={project['id']}", headers=headers)
    assert len(full.json()["items"]) == 3
    tags.append(full.headers["etag"])
    assert len(set(tags)) == len(tags), tags
    # A stale tag gets the page.
    assert (await client.get(url, headers={**headers, "If-None-Match": before})).status_code == 200
    # Another tenant's list: its own (empty) page, never this tenant's tag.
    other = await login(client, make_tenant("tlistetag2"))
    theirs = await client.get("/api/v1/tasks", headers=other)
    assert theirs.status_code == 200 and theirs.json()["items"] == []
    assert theirs.headers["etag"] not in tags


async def test_delete_is_for_admins_and_the_reporter(client, make_tenant, add_user):
    tenant = make_tenant("tdel")
    owner = await login(client, tenant)
    project, _ = await project_with_statuses(client, owner)
    _, member_email = add_user(tenant, "member")
    member = bearer(tenant, (await login_as(client, tenant, member_email))["access_token"])
    _, viewer_email = add_user(tenant, "viewer")
    viewer = bearer(tenant, (await login_as(client, tenant, viewer_email))["access_token"])
    owners_task = await new_task(client, owner, project["id"])
    members_task = await new_task(client, member, project["id"])
    assert_problem(
        await client.post(
            f"/api/v1/projects/{project['id']}/tasks", json={"title": "v"}, headers=viewer
        ),
        403,
    )
    assert (
        await client.get(f"/api/v1/tasks/{owners_task['id']}", headers=viewer)
    ).status_code == 200
    assert_problem(await client.delete(f"/api/v1/tasks/{owners_task['id']}", headers=member), 403)
    assert (
        await client.delete(f"/api/v1/tasks/{members_task['id']}", headers=member)
    ).status_code == 204
    assert (
        await client.delete(f"/api/v1/tasks/{owners_task['id']}", headers=owner)
    ).status_code == 204


async def test_task_writes_bump_the_stats_generation(client, make_tenant, sync_redis):
    tenant, other = make_tenant("tgen"), make_tenant("tgeno")
    headers = await login(client, tenant)
    project, statuses = await project_with_statuses(client, headers)
    key, other_key = keys.stats_generation_key(tenant.id), keys.stats_generation_key(other.id)

    base = int(sync_redis.get(key) or 0)  # the project's creation bumped it already

    def generation(k: str) -> int:
        return int(sync_redis.get(k) or 0) - (base if k == key else 0)

    task = await new_task(client, headers, project["id"])
    assert generation(key) == 1
    url = f"/api/v1/tasks/{task['id']}"
    await client.patch(url, json={"title": "b"}, headers=headers)
    assert generation(key) == 2
    bulk = {"task_ids": [task["id"]], "set": {"status_id": statuses["done"]}}
    assert (await client.post("/api/v1/tasks/bulk", json=bulk, headers=headers)).status_code == 200
    assert generation(key) == 3
    # Refused writes and reads change nothing.
    assert_problem(await client.patch(url, json={"title": ""}, headers=headers), 422)
    assert_problem(
        await client.patch(url, json={"title": "c"}, headers={**headers, "If-Match": '"v1"'}), 412
    )
    await client.get(url, headers=headers)
    await client.get("/api/v1/tasks", headers=headers)
    assert generation(key) == 3
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert generation(key) == 4
    assert generation(other_key) == 0


@pytest.mark.parametrize("kind", ["token", "api key"])
async def test_tasks_are_invisible_to_other_tenants(client, make_tenant, kind):
    a, b = make_tenant("tisoa"), make_tenant("tisob")
    ha, hb = await login(client, a), await login(client, b)
    if kind == "api key":
        made = await client.post(
            "/api/v1/api-keys", json={"name": "k", "role": "admin"}, headers=hb
        )
        hb = {"Authorization": f"Bearer {made.json()['key']}"}
    project, statuses = await project_with_statuses(client, ha)
    task = await new_task(client, ha, project["id"], title="secret plan")
    url = f"/api/v1/tasks/{task['id']}"
    assert_problem(await client.get(url, headers=hb), 404)
    assert_problem(await client.patch(url, json={"title": "mine"}, headers=hb), 404)
    assert_problem(await client.delete(url, headers=hb), 404)
    bulk = {"task_ids": [task["id"]], "set": {"assignee_id": None}}
    body = assert_problem(await client.post("/api/v1/tasks/bulk", json=bulk, headers=hb), 422)
    assert body["missing"] == [task["id"]]
    for query in ("", f"?project_id={project['id']}", "?q=secret", f"?status={statuses['todo']}"):
        assert (await client.get(f"/api/v1/tasks{query}", headers=hb)).json()["items"] == []
    assert (await client.get(url, headers=ha)).json()["title"] == "secret plan"
    crossed = {"X-Tenant": b.slug, "Authorization": ha["Authorization"]}
    assert_problem(await client.get("/api/v1/tasks", headers=crossed), 401)
