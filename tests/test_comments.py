"""Comments on tasks: post, list, read, edit (author only), delete (author or admin)."""

from __future__ import annotations

import pytest

from backend.kit.pagination import encode_cursor
from tests.conftest import assert_problem, bearer, login, login_as
from tests.task_rows import new_task


async def _as(client, tenant, add_user, role):
    user_id, email = add_user(tenant, role)
    return str(user_id), bearer(tenant, (await login_as(client, tenant, email))["access_token"])


async def _api_key(client, owner, role):
    resp = await client.post("/api/v1/api-keys", json={"name": role, "role": role}, headers=owner)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['key']}"}


@pytest.fixture
async def world(client, make_tenant, sync_engine):
    tenant = make_tenant("cmt")
    owner = await login(client, tenant)
    return tenant, owner, await new_task(client, sync_engine, tenant, owner)


async def test_post_read_and_list_a_comment(client, world, add_user):
    tenant, owner, task_id = world
    member_id, member = await _as(client, tenant, add_user, "member")
    made = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "  **Looks** good\n"}, headers=member
    )
    assert made.status_code == 201, made.text
    comment = made.json()
    assert comment["body"] == "  **Looks** good\n"  # kept exactly as written
    assert comment["task_id"] == task_id and comment["author_id"] == member_id
    assert comment["edited_at"] is None and comment["version"] == 1
    assert made.headers["Location"] == f"/api/v1/comments/{comment['id']}"
    assert made.headers["ETag"] == '"v1"'

    got = await client.get(made.headers["Location"], headers=owner)
    assert got.status_code == 200 and got.json() == comment
    assert got.headers["ETag"] == '"v1"'
    cached = await client.get(made.headers["Location"], headers={**owner, "If-None-Match": '"v1"'})
    assert cached.status_code == 304

    _, viewer = await _as(client, tenant, add_user, "viewer")
    listed = await client.get(f"/api/v1/tasks/{task_id}/comments", headers=viewer)
    assert listed.status_code == 200
    assert listed.json() == {"items": [comment], "next_cursor": None}
    refused = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "hi"}, headers=viewer
    )
    assert assert_problem(refused, 403, "forbidden")["action"] == "comments:create"


async def test_comments_are_paginated_oldest_first(client, world):
    _, owner, task_id = world
    url = f"/api/v1/tasks/{task_id}/comments"
    posted = []
    for n in range(5):
        resp = await client.post(url, json={"body": f"c{n}"}, headers=owner)
        posted.append(resp.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=owner)).json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == posted
    assert_problem(await client.get(url, params={"limit": 101}, headers=owner), 422)
    assert_problem(await client.get(url, params={"limit": 0}, headers=owner), 422)
    for bad in ("junk", encode_cursor(["x", "y"]), encode_cursor([1])):
        resp = await client.get(url, params={"cursor": bad}, headers=owner)
        assert_problem(resp, 422, "invalid-cursor")


async def test_only_the_author_edits(client, world, add_user):
    tenant, owner, task_id = world
    _, author = await _as(client, tenant, add_user, "member")
    _, other = await _as(client, tenant, add_user, "member")
    made = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "first"}, headers=author
    )
    url = made.headers["Location"]
    for stranger in (other, owner):  # not even the owner edits someone's words
        resp = await client.patch(url, json={"body": "hijacked"}, headers=stranger)
        assert assert_problem(resp, 403, "forbidden")["action"] == "comments:update"

    same = await client.patch(url, json={"body": "first"}, headers=author)
    assert same.status_code == 200 and same.json()["edited_at"] is None  # nothing changed
    assert same.headers["ETag"] == '"v1"'

    edited = await client.patch(
        url, json={"body": "second"}, headers={**author, "If-Match": '"v1"'}
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["body"] == "second" and body["version"] == 2
    assert body["edited_at"] is not None and body["edited_at"] == body["updated_at"]
    assert edited.headers["ETag"] == '"v2"'

    stale = await client.patch(url, json={"body": "third"}, headers={**author, "If-Match": '"v1"'})
    assert assert_problem(stale, 412, "precondition-failed")["current_etag"] == '"v2"'
    assert (await client.get(url, headers=owner)).json()["body"] == "second"


async def test_author_or_admin_deletes(client, world, add_user):
    tenant, owner, task_id = world
    url = f"/api/v1/tasks/{task_id}/comments"
    _, author = await _as(client, tenant, add_user, "member")
    _, other = await _as(client, tenant, add_user, "member")
    _, admin = await _as(client, tenant, add_user, "admin")
    first = (await client.post(url, json={"body": "one"}, headers=author)).headers["Location"]
    second = (await client.post(url, json={"body": "two"}, headers=author)).headers["Location"]

    refused = await client.delete(first, headers=other)
    assert assert_problem(refused, 403, "forbidden")["action"] == "comments:delete"
    stale = await client.delete(first, headers={**author, "If-Match": '"v9"'})
    assert_problem(stale, 412, "precondition-failed")
    assert (await client.delete(first, headers={**author, "If-Match": '"v1"'})).status_code == 204
    assert (await client.delete(second, headers=admin)).status_code == 204
    for gone in (first, second):
        assert_problem(await client.get(gone, headers=owner), 404, "comment-not-found")
    assert (await client.get(url, headers=owner)).json()["items"] == []


async def test_api_key_comments_have_no_author(client, world):
    _, owner, task_id = world
    member_key = await _api_key(client, owner, "member")
    admin_key = await _api_key(client, owner, "admin")
    made = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "from CI"}, headers=member_key
    )
    assert made.status_code == 201, made.text
    assert made.json()["author_id"] is None
    url = made.headers["Location"]
    for caller in (member_key, admin_key, owner):  # nobody is the author
        assert_problem(await client.patch(url, json={"body": "x"}, headers=caller), 403)
    assert_problem(await client.delete(url, headers=member_key), 403)
    assert (await client.delete(url, headers=admin_key)).status_code == 204


@pytest.mark.parametrize(
    "payload",
    [
        {"body": "a\x00b"},
        {"body": "x" * 20_001},
        {"body": ""},
        {"body": " \n\t"},
        {"body": 42},
        {"body": None},
        {"body": ["list"]},
        {},
        {"body": "ok", "author_id": "00000000-0000-0000-0000-000000000000"},
    ],
)
async def test_bad_comment_bodies_are_422(client, world, payload):
    _, owner, task_id = world
    url = f"/api/v1/tasks/{task_id}/comments"
    body = assert_problem(await client.post(url, json=payload, headers=owner), 422)
    assert body["errors"][0]["field"].startswith("body")
    made = await client.post(url, json={"body": "x" * 20_000}, headers=owner)
    assert made.status_code == 201  # the limit itself is fine
    patched = await client.patch(made.headers["Location"], json=payload, headers=owner)
    assert_problem(patched, 422)
    assert (await client.get(url, headers=owner)).json()["items"][0]["body"] == "x" * 20_000


async def test_unknown_task_or_comment_is_404(client, world):
    _, owner, _ = world
    missing = "00000000-0000-4000-8000-000000000000"
    for resp in (
        await client.post(f"/api/v1/tasks/{missing}/comments", json={"body": "x"}, headers=owner),
        await client.get(f"/api/v1/tasks/{missing}/comments", headers=owner),
    ):
        assert_problem(resp, 404, "task-not-found")
    for method in ("GET", "PATCH", "DELETE"):
        resp = await client.request(
            method, f"/api/v1/comments/{missing}", json={"body": "x"}, headers=owner
        )
        assert_problem(resp, 404, "comment-not-found")
    assert_problem(await client.get("/api/v1/comments/not-a-uuid", headers=owner), 422)


async def test_comments_are_invisible_to_other_tenants(client, world, make_tenant, sync_engine):
    tenant_a, ha, task_id = world
    b = make_tenant("cmtb")
    hb = await login(client, b)
    own_task = await new_task(client, sync_engine, b, hb)
    await client.post(f"/api/v1/tasks/{own_task}/comments", json={"body": "b's"}, headers=hb)
    made = await client.post(
        f"/api/v1/tasks/{task_id}/comments", json={"body": "secret"}, headers=ha
    )
    url = made.headers["Location"]
    assert_problem(await client.get(url, headers=hb), 404, "comment-not-found")
    assert_problem(await client.patch(url, json={"body": "x"}, headers=hb), 404)
    assert_problem(await client.delete(url, headers=hb), 404)
    assert_problem(await client.get(f"/api/v1/tasks/{task_id}/comments", headers=hb), 404)
    posted = await client.post(f"/api/v1/tasks/{task_id}/comments", json={"body": "x"}, headers=hb)
    assert_problem(posted, 404, "task-not-found")
    b_list = (await client.get(f"/api/v1/tasks/{own_task}/comments", headers=hb)).json()
    assert [c["body"] for c in b_list["items"]] == ["b's"]
    a_list = (await client.get(f"/api/v1/tasks/{task_id}/comments", headers=ha)).json()
    assert [c["body"] for c in a_list["items"]] == ["secret"]
    crossed = {"X-Tenant": b.slug, "Authorization": ha["Authorization"]}
    assert_problem(await client.get(f"/api/v1/tasks/{own_task}/comments", headers=crossed), 401)
    assert tenant_a.slug != b.slug
