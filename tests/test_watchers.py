"""Watchers of a task: members watch themselves, admins manage anyone; idempotent."""

from __future__ import annotations

import pytest

from backend.kit.pagination import encode_cursor
from tests.conftest import assert_problem, bearer, login, login_as
from tests.task_rows import new_task


async def _as(client, tenant, add_user, role):
    user_id, email = add_user(tenant, role)
    return str(user_id), bearer(tenant, (await login_as(client, tenant, email))["access_token"])


@pytest.fixture
async def world(client, make_tenant, sync_engine):
    tenant = make_tenant("wch")
    owner = await login(client, tenant)
    task_id = await new_task(client, sync_engine, tenant, owner)
    return tenant, owner, f"/api/v1/tasks/{task_id}/watchers"


async def _watchers(client, url, headers):
    resp = await client.get(url, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


async def test_a_member_watches_and_unwatches_themself(client, world, add_user):
    tenant, owner, url = world
    me, member = await _as(client, tenant, add_user, "member")
    other, _ = await _as(client, tenant, add_user, "member")
    assert await _watchers(client, url, member) == []
    for _ in range(2):  # idempotent
        assert (await client.put(f"{url}/{me}", headers=member)).status_code == 204
    assert await _watchers(client, url, owner) == [me]

    refused = await client.put(f"{url}/{other}", headers=member)
    assert assert_problem(refused, 403, "forbidden")["action"] == "watchers:update"
    viewer_id, viewer = await _as(client, tenant, add_user, "viewer")
    assert await _watchers(client, url, viewer) == [me]
    refused = await client.put(f"{url}/{viewer_id}", headers=viewer)
    assert assert_problem(refused, 403, "forbidden")["action"] == "watchers:update"

    for _ in range(2):
        assert (await client.delete(f"{url}/{me}", headers=member)).status_code == 204
    assert await _watchers(client, url, owner) == []


async def test_admins_manage_anyone(client, world, add_user):
    tenant, owner, url = world
    target, member = await _as(client, tenant, add_user, "member")
    _, admin = await _as(client, tenant, add_user, "admin")
    assert (await client.put(f"{url}/{target}", headers=admin)).status_code == 204
    assert await _watchers(client, url, member) == [target]
    _, other = await _as(client, tenant, add_user, "member")
    assert_problem(await client.delete(f"{url}/{target}", headers=other), 403, "forbidden")
    assert (await client.delete(f"{url}/{target}", headers=owner)).status_code == 204
    assert await _watchers(client, url, member) == []


async def test_unknown_or_deactivated_users_and_tasks(client, world, add_user):
    tenant, owner, url = world
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(await client.put(f"{url}/{missing}", headers=owner), 404, "user-not-found")
    assert_problem(await client.delete(f"{url}/{missing}", headers=owner), 404, "user-not-found")
    inactive, _ = add_user(tenant, "member", active=False)
    assert_problem(await client.put(f"{url}/{inactive}", headers=owner), 422, "user-inactive")
    assert (await client.delete(f"{url}/{inactive}", headers=owner)).status_code == 204
    no_task = f"/api/v1/tasks/{missing}/watchers"
    assert_problem(await client.get(no_task, headers=owner), 404, "task-not-found")
    me, member = await _as(client, tenant, add_user, "member")
    assert_problem(await client.put(f"{no_task}/{me}", headers=member), 404, "task-not-found")
    assert_problem(await client.put(f"{url}/not-a-uuid", headers=owner), 422)
    assert_problem(await client.get("/api/v1/tasks/nope/watchers", headers=owner), 422)
    assert await _watchers(client, url, owner) == []


async def test_api_keys_have_no_self(client, world, add_user):
    tenant, owner, url = world
    target, _ = await _as(client, tenant, add_user, "member")
    keys = {}
    for role in ("member", "admin"):
        made = await client.post(
            "/api/v1/api-keys", json={"name": role, "role": role}, headers=owner
        )
        keys[role] = {"Authorization": f"Bearer {made.json()['key']}"}
    assert_problem(await client.put(f"{url}/{target}", headers=keys["member"]), 403)
    assert (await client.put(f"{url}/{target}", headers=keys["admin"])).status_code == 204
    assert await _watchers(client, url, keys["member"]) == [target]


async def test_watchers_are_paginated_in_id_order(client, world, add_user):
    tenant, owner, url = world
    ids = sorted([str(add_user(tenant, "member")[0]) for _ in range(5)])
    for user_id in reversed(ids):
        assert (await client.put(f"{url}/{user_id}", headers=owner)).status_code == 204
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=owner)).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    for bad in ("junk", encode_cursor(["not-a-uuid"]), encode_cursor([3]), encode_cursor([])):
        resp = await client.get(url, params={"cursor": bad}, headers=owner)
        assert_problem(resp, 422, "invalid-cursor")
    assert_problem(await client.get(url, params={"limit": 101}, headers=owner), 422)


async def test_watchers_are_isolated_between_tenants(client, world, make_tenant, sync_engine):
    _, ha, url = world
    b = make_tenant("wchb")
    hb = await login(client, b)
    b_url = f"/api/v1/tasks/{await new_task(client, sync_engine, b, hb)}/watchers"
    a_owner_id = (await client.get("/api/v1/users/me", headers=ha)).json()["id"]
    assert (await client.put(f"{url}/{a_owner_id}", headers=ha)).status_code == 204
    # B cannot see or change A's task, nor make A's user watch B's task.
    assert_problem(await client.get(url, headers=hb), 404, "task-not-found")
    assert_problem(await client.delete(f"{url}/{a_owner_id}", headers=hb), 404)
    assert_problem(await client.put(f"{b_url}/{a_owner_id}", headers=hb), 404, "user-not-found")
    assert await _watchers(client, b_url, hb) == []
    assert await _watchers(client, url, ha) == [a_owner_id]


async def test_removing_a_watcher_honours_if_match_on_the_task(client, world, add_user):
    tenant, owner, url = world
    me, member = await _as(client, tenant, add_user, "member")
    task_url = url.removesuffix("/watchers")
    stale = (await client.get(task_url, headers=owner)).headers["etag"]
    assert (await client.put(f"{url}/{me}", headers=member)).status_code == 204
    refused = await client.delete(f"{url}/{me}", headers={**member, "If-Match": stale})
    assert_problem(refused, 412, "precondition-failed")
    assert await _watchers(client, url, owner) == [me]
    current = (await client.get(task_url, headers=owner)).headers["etag"]
    assert current != stale
    done = await client.delete(f"{url}/{me}", headers={**member, "If-Match": current})
    assert done.status_code == 204
    assert await _watchers(client, url, owner) == []
