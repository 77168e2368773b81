"""Labels of a tenant: list, create (writers), rename/recolour/delete (admins), uniqueness."""

from __future__ import annotations

import pytest

from backend.kit.pagination import encode_cursor
from tests.conftest import assert_problem, bearer, login, login_as


async def _as(client, tenant, add_user, role):
    _, email = add_user(tenant, role)
    return bearer(tenant, (await login_as(client, tenant, email))["access_token"])


async def test_create_list_and_read_labels(client, make_tenant, add_user):
    tenant = make_tenant("lbl")
    owner = await login(client, tenant)
    member = await _as(client, tenant, add_user, "member")
    made = await client.post("/api/v1/labels", json={"name": " Bug "}, headers=member)
    assert made.status_code == 201, made.text
    label = made.json()
    assert label["name"] == "Bug" and label["color"] == "#6b7280"
    assert made.headers["Location"] == f"/api/v1/labels/{label['id']}"
    etag = made.headers["ETag"]
    got = await client.get(made.headers["Location"], headers=owner)
    assert got.json() == label and got.headers["ETag"] == etag
    cached = await client.get(made.headers["Location"], headers={**owner, "If-None-Match": etag})
    assert cached.status_code == 304

    for name, color in (("feature", "#00AAFF"), ("Chore", "#123abc"), ("alpha", "#000000")):
        resp = await client.post(
            "/api/v1/labels", json={"name": name, "color": color}, headers=owner
        )
        assert resp.status_code == 201, resp.text
    viewer = await _as(client, tenant, add_user, "viewer")
    listed = (await client.get("/api/v1/labels", headers=viewer)).json()
    assert [x["name"] for x in listed["items"]] == ["alpha", "Bug", "Chore", "feature"]
    assert listed["items"][3]["color"] == "#00aaff"  # stored lowercase
    assert listed["next_cursor"] is None
    refused = await client.post("/api/v1/labels", json={"name": "x"}, headers=viewer)
    assert assert_problem(refused, 403, "forbidden")["action"] == "labels:create"


async def test_labels_are_paginated_by_name(client, make_tenant):
    tenant = make_tenant("lblp")
    owner = await login(client, tenant)
    names = ["e", "B", "a", "D", "c"]
    for name in names:
        await client.post("/api/v1/labels", json={"name": name}, headers=owner)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/labels", params=params, headers=owner)).json()
        assert len(page["items"]) <= 2
        seen += [x["name"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a", "B", "c", "D", "e"]
    for bad in ("junk", encode_cursor([5]), encode_cursor(["a", "b"])):
        resp = await client.get("/api/v1/labels", params={"cursor": bad}, headers=owner)
        assert_problem(resp, 422, "invalid-cursor")
    assert_problem(await client.get("/api/v1/labels?limit=101", headers=owner), 422)


async def test_names_are_unique_ignoring_case(client, make_tenant):
    tenant = make_tenant("lblu")
    owner = await login(client, tenant)
    bug = await client.post("/api/v1/labels", json={"name": "Bug"}, headers=owner)
    other = await client.post("/api/v1/labels", json={"name": "Other"}, headers=owner)
    for name in ("bug", "BUG", " Bug"):
        resp = await client.post("/api/v1/labels", json={"name": name}, headers=owner)
        assert_problem(resp, 409, "label-exists")
    resp = await client.patch(other.headers["Location"], json={"name": "bUg"}, headers=owner)
    assert_problem(resp, 409, "label-exists")
    # A label may change the case of its own name.
    resp = await client.patch(bug.headers["Location"], json={"name": "BUG"}, headers=owner)
    assert resp.status_code == 200 and resp.json()["name"] == "BUG"
    names = [x["name"] for x in (await client.get("/api/v1/labels", headers=owner)).json()["items"]]
    assert names == ["BUG", "Other"]


async def test_admins_rename_recolour_and_delete_with_if_match(client, make_tenant, add_user):
    tenant = make_tenant("lblm")
    owner = await login(client, tenant)
    admin = await _as(client, tenant, add_user, "admin")
    member = await _as(client, tenant, add_user, "member")
    made = await client.post("/api/v1/labels", json={"name": "Bug"}, headers=member)
    url, first_etag = made.headers["Location"], made.headers["ETag"]
    for method in ("PATCH", "DELETE"):
        resp = await client.request(method, url, json={"color": "#ff0000"}, headers=member)
        assert assert_problem(resp, 403, "forbidden")["action"] == "labels:manage"

    changed = await client.patch(
        url, json={"color": "#FF0000"}, headers={**admin, "If-Match": first_etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["color"] == "#ff0000" and changed.json()["name"] == "Bug"
    assert changed.headers["ETag"] != first_etag
    stale = await client.patch(url, json={"name": "x"}, headers={**admin, "If-Match": first_etag})
    assert_problem(stale, 412, "precondition-failed")
    stale = await client.delete(url, headers={**owner, "If-Match": first_etag})
    assert_problem(stale, 412, "precondition-failed")
    assert (await client.get(url, headers=owner)).json()["name"] == "Bug"
    deleted = await client.delete(url, headers={**owner, "If-Match": changed.headers["ETag"]})
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=owner), 404, "label-not-found")
    assert_problem(await client.delete(url, headers=owner), 404, "label-not-found")


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "a\x00b"},
        {"name": "x" * 51},
        {"name": ""},
        {"name": "   "},
        {"name": 7},
        {"name": "ok", "color": "red"},
        {"name": "ok", "color": "#fff"},
        {"name": "ok", "color": "#gggggg"},
        {"name": "ok", "color": "#1234567"},
        {"name": "ok", "color": 0xFFFFFF},
        {"name": "ok", "color": None},
        {"name": "ok", "extra": 1},
        {},
    ],
)
async def test_bad_label_input_is_422(client, make_tenant, payload):
    tenant = make_tenant("lblv")
    owner = await login(client, tenant)
    assert_problem(await client.post("/api/v1/labels", json=payload, headers=owner), 422)
    made = await client.post("/api/v1/labels", json={"name": "x" * 50}, headers=owner)
    assert made.status_code == 201
    if payload:  # an empty PATCH is a valid no-op
        # The field under test alone ("ok" as a name would be valid in a PATCH).
        patch = {k: v for k, v in payload.items() if k != "name"} or payload
        resp = await client.patch(made.headers["Location"], json=patch, headers=owner)
        assert_problem(resp, 422)
    items = (await client.get("/api/v1/labels", headers=owner)).json()["items"]
    assert [(x["name"], x["color"]) for x in items] == [("x" * 50, "#6b7280")]


async def test_null_in_patch_is_422(client, make_tenant):
    tenant = make_tenant("lbln")
    owner = await login(client, tenant)
    made = await client.post("/api/v1/labels", json={"name": "a"}, headers=owner)
    for payload in ({"name": None}, {"color": None}):
        resp = await client.patch(made.headers["Location"], json=payload, headers=owner)
        assert_problem(resp, 422)


async def test_labels_are_invisible_to_other_tenants(client, make_tenant):
    a, b = make_tenant("lbla"), make_tenant("lblb")
    ha, hb = await login(client, a), await login(client, b)
    made = await client.post("/api/v1/labels", json={"name": "Secret"}, headers=ha)
    url = made.headers["Location"]
    assert_problem(await client.get(url, headers=hb), 404, "label-not-found")
    assert_problem(await client.patch(url, json={"name": "x"}, headers=hb), 404)
    assert_problem(await client.delete(url, headers=hb), 404)
    assert (await client.get("/api/v1/labels", headers=hb)).json()["items"] == []
    # Names are unique per tenant only.
    same = await client.post("/api/v1/labels", json={"name": "secret"}, headers=hb)
    assert same.status_code == 201, same.text
    a_names = [x["name"] for x in (await client.get("/api/v1/labels", headers=ha)).json()["items"]]
    assert a_names == ["Secret"]
    crossed = {"X-Tenant": b.slug, "Authorization": ha["Authorization"]}
    assert_problem(await client.get("/api/v1/labels", headers=crossed), 401)
