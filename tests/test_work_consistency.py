"""Cross-cutting consistency of the work domain: ETags that follow every visible change,
project keys under races, and stats invalidated by project writes."""

from __future__ import annotations

import asyncio

from tenancy import keys
from tests.conftest import assert_problem, login
from tests.task_helpers import add_labels, new_task, project_with_statuses


async def test_task_etag_moves_with_watchers_and_label_deletion(client, make_tenant, sync_engine):
    tenant = make_tenant("etagrel")
    headers = await login(client, tenant)
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    project, _ = await project_with_statuses(client, headers)
    [label] = add_labels(sync_engine, tenant, "urgent")
    task = await new_task(client, headers, project["id"], labels=[label])
    url = f"/api/v1/tasks/{task['id']}"

    async def etag() -> str:
        return (await client.get(url, headers=headers)).headers["etag"]

    first = await etag()
    put = await client.put(f"{url}/watchers/{me['id']}", headers=headers)
    assert put.status_code == 204
    second = await etag()
    assert second != first
    again = await client.put(f"{url}/watchers/{me['id']}", headers=headers)  # no change
    assert again.status_code == 204 and await etag() == second
    cached = await client.get(url, headers={**headers, "If-None-Match": first})
    assert cached.status_code == 200 and cached.json()["watchers"] == [me["id"]]
    assert (await client.delete(f"/api/v1/labels/{label}", headers=headers)).status_code == 204
    third = await etag()
    assert third != second
    assert (await client.get(url, headers=headers)).json()["labels"] == []


async def test_racing_creates_of_one_project_key(client, make_tenant):
    tenant = make_tenant("keyrace")
    headers = await login(client, tenant)
    results = await asyncio.gather(
        *(
            client.post("/api/v1/projects", json={"name": f"p{i}", "key": "RACE"}, headers=headers)
            for i in range(8)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1 and set(codes) == {201, 409}, [r.text for r in results]
    for resp in results:
        if resp.status_code == 409:
            assert_problem(resp, 409, "project-key-taken")


async def test_project_writes_invalidate_stats(client, make_tenant, sync_redis):
    tenant = make_tenant("projstats")
    headers = await login(client, tenant)
    key = keys.stats_generation_key(tenant.id)
    before = int(sync_redis.get(key) or 0)
    project, _ = await project_with_statuses(client, headers)
    after_create = int(sync_redis.get(key) or 0)
    assert after_create > before
    url = f"/api/v1/projects/{project['id']}"
    await client.patch(url, json={"name": "renamed"}, headers=headers)
    after_rename = int(sync_redis.get(key) or 0)
    assert after_rename > after_create
    await client.get(url, headers=headers)
    assert int(sync_redis.get(key) or 0) == after_rename  # reads do not invalidate
    await client.delete(url, headers=headers)
    assert int(sync_redis.get(key) or 0) > after_rename
