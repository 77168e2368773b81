"""Object-level authorization: every route that takes an id answers 404 for another tenant's id.

The test walks the app's routes, so a new route with an id fails here until it is covered.
"""

from __future__ import annotations

import re

import pytest

from backend.identity.permissions import HUMAN_ONLY
from tests.conftest import bearer, login_as
from tests.routes import api_routes
from tests.test_permissions import _declared


def _action(route):
    return next(iter(set(_declared(route.dependant))))


async def _objects(client, tenant, add_user, sync_engine):
    """One object of each kind in ``tenant``, by path parameter name."""
    owner = bearer(tenant, (await login_as(client, tenant, tenant.email))["access_token"])
    project = await client.post("/api/v1/projects", json={"name": "secret"}, headers=owner)
    key = await client.post("/api/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=owner)
    invite = await client.post(
        "/api/v1/invites", json={"email": f"new@{tenant.slug}.example.com"}, headers=owner
    )
    assert invite.status_code == 201, invite.text
    task = await client.post(
        f"/api/v1/projects/{project.json()['id']}/tasks", json={"title": "t"}, headers=owner
    )
    assert task.status_code == 201, task.text
    user_id, _ = add_user(tenant, "member")
    task_id = task.json()["id"]
    comment = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "secret"}, headers=owner
    )
    label = await client.post("/api/v1/labels", json={"name": "secret"}, headers=owner)
    assert comment.status_code == 201 and label.status_code == 201, (comment.text, label.text)
    # PUT /tasks/{task_id}/watchers/{user_id} at b must not add a's member to a's task.
    return owner, {
        "invite_id": invite.json()["id"],
        "project_id": project.json()["id"],
        "key_id": key.json()["id"],
        "user_id": str(user_id),
        "task_id": task_id,
        "comment_id": comment.json()["id"],
        "label_id": label.json()["id"],
    }


@pytest.mark.parametrize("kind", ["owner token", "admin API key"])
async def test_other_tenants_ids_are_404_on_every_route(
    app, client, make_tenant, add_user, sync_engine, kind
):
    a, b = make_tenant("obja"), make_tenant("objb")
    a_owner, ids = await _objects(client, a, add_user, sync_engine)
    b_owner, _ = await _objects(client, b, add_user, sync_engine)
    if kind == "admin API key":
        resp = await client.post(
            "/api/v1/api-keys", json={"name": "o", "role": "admin"}, headers=b_owner
        )
        b_owner = {"Authorization": f"Bearer {resp.json()['key']}"}
    id_routes = [r for r in api_routes(app) if re.search(r"\{\w+_id\}", r.path)]
    assert len(id_routes) >= 7
    for route in id_routes:
        params = re.findall(r"\{(\w+)\}", route.path)
        missing = [p for p in params if p not in ids]
        assert not missing, f"{route.path}: add a factory for {missing}"
        path = route.path.format(**ids)
        human_only = _action(route) in HUMAN_ONLY and kind == "admin API key"
        for method in route.methods:
            resp = await client.request(method, path, headers=b_owner, json={})
            expected = 403 if human_only else 404  # keys are refused before any lookup
            assert resp.status_code == expected, f"{method} {path}: {resp.status_code} {resp.text}"
            assert resp.headers["content-type"].startswith("application/problem+json")
        if "GET" in route.methods:  # the id is real: a sees it
            assert (await client.get(path, headers=a_owner)).status_code == 200
    # Nothing of a's was touched by b's attempts.
    project = await client.get(f"/api/v1/projects/{ids['project_id']}", headers=a_owner)
    assert project.json()["name"] == "secret"
    keys = (await client.get("/api/v1/api-keys", headers=a_owner)).json()["items"]
    assert keys[0]["revoked_at"] is None
    invites = (await client.get("/api/v1/invites", headers=a_owner)).json()["items"]
    assert [i["id"] for i in invites] == [ids["invite_id"]]
    task = await client.get(f"/api/v1/tasks/{ids['task_id']}", headers=a_owner)
    assert task.json()["title"] == "t" and task.json()["version"] == 1
    user = await client.get(f"/api/v1/users/{ids['user_id']}", headers=a_owner)
    assert user.json()["is_active"] is True and user.json()["role"] == "member"
    comment = await client.get(f"/api/v1/comments/{ids['comment_id']}", headers=a_owner)
    assert comment.json()["body"] == "secret" and comment.json()["version"] == 1
    label = await client.get(f"/api/v1/labels/{ids['label_id']}", headers=a_owner)
    assert label.json()["name"] == "secret"
    watchers = await client.get(f"/api/v1/tasks/{ids['task_id']}/watchers", headers=a_owner)
    assert watchers.json()["items"] == []
