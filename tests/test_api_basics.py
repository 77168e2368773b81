"""Login, the signed-in user, projects CRUD and errors over HTTP against real services."""

from __future__ import annotations

from tests.conftest import assert_problem, login


async def test_login_and_me(client, make_tenant):
    tenant = make_tenant()
    headers = await login(client, tenant)
    resp = await client.get("/api/v1/users/me", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["email"] == tenant.email and body["role"] == "owner"


async def test_login_wrong_password_is_401_problem(client, make_tenant):
    tenant = make_tenant()
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": tenant.email, "password": "not-the-password"},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(resp, 401, "invalid-credentials")


async def test_projects_crud(client, make_tenant):
    tenant = make_tenant()
    headers = await login(client, tenant)
    resp = await client.post(
        "/api/v1/projects", json={"name": "Ops", "description": "d"}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    project = resp.json()
    assert resp.headers["location"] == f"/api/v1/projects/{project['id']}"
    got = await client.get(f"/api/v1/projects/{project['id']}", headers=headers)
    assert got.status_code == 200 and got.json()["name"] == "Ops"
    patched = await client.patch(
        f"/api/v1/projects/{project['id']}", json={"archived": True}, headers=headers
    )
    assert patched.status_code == 200 and patched.json()["archived"] is True
    deleted = await client.delete(f"/api/v1/projects/{project['id']}", headers=headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/projects/{project['id']}", headers=headers)
    assert_problem(gone, 404, "project-not-found")


async def test_patch_nulls(client, make_tenant):
    """A null name (or archived) is a validation error with its field; a null description clears."""
    tenant = make_tenant()
    headers = await login(client, tenant)
    made = await client.post(
        "/api/v1/projects", json={"name": "Ops", "description": "keep?"}, headers=headers
    )
    url = f"/api/v1/projects/{made.json()['id']}"
    for field in ("name", "archived"):
        body = assert_problem(
            await client.patch(url, json={field: None}, headers=headers), 422, "validation-error"
        )
        assert [e["field"] for e in body["errors"]] == [f"body.{field}"]
    cleared = await client.patch(url, json={"description": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["description"] == ""
    assert (await client.get(url, headers=headers)).json()["name"] == "Ops"


async def test_project_keys_statuses_and_etags(client, make_tenant):
    tenant = make_tenant("pkeys")
    headers = await login(client, tenant)
    made = []
    for name in ("Platform Operations", "Platform Ops", "Operations", "Ünïcode Ærø", "!!!"):
        resp = await client.post("/api/v1/projects", json={"name": name}, headers=headers)
        assert resp.status_code == 201, resp.text
        made.append(resp.json()["key"])
    assert made == ["PO", "PO2", "OPER", "UR", "PRJ"]
    explicit = await client.post(
        "/api/v1/projects", json={"name": "x", "key": "OPS"}, headers=headers
    )
    assert explicit.json()["key"] == "OPS"
    assert_problem(
        await client.post("/api/v1/projects", json={"name": "y", "key": "OPS"}, headers=headers),
        409,
        "project-key-taken",
    )
    for bad in ("ops", "O", "1OPS", "TOOLONGKEY1", 5):
        resp = await client.post(
            "/api/v1/projects", json={"name": "z", "key": bad}, headers=headers
        )
        assert_problem(resp, 422)
    project = explicit.json()
    statuses = await client.get(f"/api/v1/projects/{project['id']}/statuses", headers=headers)
    assert [(s["name"], s["category"]) for s in statuses.json()] == [
        ("To Do", "todo"),
        ("In Progress", "in_progress"),
        ("Done", "done"),
    ]
    # ETag on read, 304 on If-None-Match, 412 on a stale If-Match.
    url = f"/api/v1/projects/{project['id']}"
    read = await client.get(url, headers=headers)
    tag = read.headers["etag"]
    assert tag == explicit.headers["etag"] == '"v1"'
    assert (await client.get(url, headers={**headers, "If-None-Match": tag})).status_code == 304
    changed = await client.patch(
        url, json={"name": "renamed"}, headers={**headers, "If-Match": tag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] == '"v2"'
    assert changed.json()["key"] == "OPS"
    stale = await client.patch(url, json={"name": "again"}, headers={**headers, "If-Match": tag})
    assert_problem(stale, 412, "precondition-failed")
    assert_problem(await client.delete(url, headers={**headers, "If-Match": tag}), 412)
    assert (await client.delete(url, headers={**headers, "If-Match": '"v2"'})).status_code == 204
