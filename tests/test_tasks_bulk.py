"""Bulk task updates: all or nothing, validated as a whole."""

from __future__ import annotations

import uuid

from tests.conftest import assert_problem, bearer, login, login_as
from tests.task_helpers import add_labels, new_task, project_with_statuses

URL = "/api/v1/tasks/bulk"


async def _state(client, headers, ids):
    return [(await client.get(f"/api/v1/tasks/{i}", headers=headers)).json() for i in ids]


async def test_bulk_changes_status_assignee_and_labels(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("tbulk")
    headers = await login(client, tenant)
    project, statuses = await project_with_statuses(client, headers)
    user, _ = add_user(tenant, "member")
    red, blue, green = add_labels(sync_engine, tenant, "red", "blue", "green")
    tasks = [
        await new_task(client, headers, project["id"], labels=labels)
        for labels in ([red], [red, blue], [])
    ]
    ids = [t["id"] for t in tasks]
    body = {
        "task_ids": ids[::-1],
        "set": {
            "status_id": statuses["done"],
            "assignee_id": str(user),
            "labels": {"add": [green], "remove": [red]},
        },
    }
    resp = await client.post(URL, json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [t["id"] for t in items] == ids[::-1]  # in the order asked
    for item in items:
        assert item["status_id"] == statuses["done"] and item["completed_at"] is not None
        assert item["assignee_id"] == str(user) and item["version"] == 2
    labels = {t["id"]: set(t["labels"]) for t in items}
    assert labels == {ids[0]: {green}, ids[1]: {blue, green}, ids[2]: {green}}
    assert items == await _state(client, headers, ids[::-1])
    # assignee_id null unassigns; other fields stay.
    resp = await client.post(
        URL, json={"task_ids": ids[:1], "set": {"assignee_id": None}}, headers=headers
    )
    assert resp.json()["items"][0]["assignee_id"] is None
    assert resp.json()["items"][0]["status_id"] == statuses["done"]


async def test_bulk_is_all_or_nothing(client, make_tenant, sync_engine):
    tenant = make_tenant("tbulk0")
    headers = await login(client, tenant)
    project, statuses = await project_with_statuses(client, headers)
    other, other_statuses = await project_with_statuses(client, headers, name="Other")
    [red] = add_labels(sync_engine, tenant, "red")
    tasks = [await new_task(client, headers, project["id"]) for _ in range(3)]
    foreign = await new_task(client, headers, other["id"])
    ids = [t["id"] for t in tasks]
    before = await _state(client, headers, [*ids, foreign["id"]])

    missing = str(uuid.uuid4())
    body = {"task_ids": [*ids, missing], "set": {"status_id": statuses["done"]}}
    problem = assert_problem(await client.post(URL, json=body, headers=headers), 422)
    assert problem["missing"] == [missing]
    # A status of one project cannot be given to a task of another: nothing changes.
    body = {"task_ids": [*ids, foreign["id"]], "set": {"status_id": statuses["done"]}}
    problem = assert_problem(await client.post(URL, json=body, headers=headers), 422)
    assert problem["errors"][0]["field"] == "body.set.status_id"
    assert problem["errors"][0]["task_ids"] == [foreign["id"]]
    unknown_label = str(uuid.uuid4())
    refused = [
        {"task_ids": ids, "set": {"labels": {"add": [red, unknown_label]}}},
        {"task_ids": ids, "set": {"assignee_id": str(uuid.uuid4())}},
        {"task_ids": ids, "set": {"status_id": other_statuses["todo"], "assignee_id": None}},
        {"task_ids": ids, "set": {"labels": {"add": [red], "remove": [red]}}},
        {"task_ids": ids, "set": {}},
        {"task_ids": ids, "set": {"status_id": None}},
        {"task_ids": [], "set": {"assignee_id": None}},
        {"task_ids": [ids[0], ids[0]], "set": {"assignee_id": None}},
        {"task_ids": [str(uuid.uuid4()) for _ in range(101)], "set": {"assignee_id": None}},
        {"task_ids": ids, "set": {"priority": "high"}},
        {"task_ids": ids[0], "set": {"assignee_id": None}},
    ]
    for body in refused:
        resp = await client.post(URL, json=body, headers=headers)
        assert resp.status_code == 422, (body, resp.text)
        assert_problem(resp, 422)
    assert await _state(client, headers, [*ids, foreign["id"]]) == before


async def test_bulk_label_limit_and_permissions(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("tbulkl")
    headers = await login(client, tenant)
    project, _ = await project_with_statuses(client, headers)
    many = add_labels(sync_engine, tenant, *(f"l{i}" for i in range(21)))
    full = await new_task(client, headers, project["id"], labels=many[:20])
    light = await new_task(client, headers, project["id"])
    body = {"task_ids": [light["id"], full["id"]], "set": {"labels": {"add": [many[20]]}}}
    problem = assert_problem(await client.post(URL, json=body, headers=headers), 422)
    assert problem["errors"][0]["task_ids"] == [full["id"]]
    assert (await client.get(f"/api/v1/tasks/{light['id']}", headers=headers)).json()[
        "labels"
    ] == []
    # Swapping one label keeps the task within the limit.
    body["set"] = {"labels": {"add": [many[20]], "remove": [many[0]]}}
    assert (await client.post(URL, json=body, headers=headers)).status_code == 200
    _, viewer_email = add_user(tenant, "viewer")
    viewer = bearer(tenant, (await login_as(client, tenant, viewer_email))["access_token"])
    body = {"task_ids": [light["id"]], "set": {"assignee_id": None}}
    assert_problem(await client.post(URL, json=body, headers=viewer), 403, "forbidden")
