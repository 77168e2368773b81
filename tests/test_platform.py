"""The operator API: create, list, show, change and delete tenants."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import OWNER_PASSWORD, assert_problem


def _new(slug: str | None = None, **over: object) -> dict[str, object]:
    slug = slug or f"p-{uuid.uuid4().hex[:10]}"
    return {
        "slug": slug,
        "name": "Acme Corp",
        "plan": "pro",
        "owner_email": f"boss@{slug}.example.com",
        "owner_password": OWNER_PASSWORD,
        **over,
    }


async def test_create_then_owner_logs_in(client, platform_headers):
    data = _new()
    resp = await client.post("/platform/v1/tenants", json=data, headers=platform_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) >= {"id", "slug", "name", "plan", "status", "created_at"}
    assert body["status"] == "active" and body["plan"] == "pro"
    assert resp.headers["location"] == f"/platform/v1/tenants/{data['slug']}"
    login = await client.post(
        "/api/v1/auth/login",
        headers={"X-Tenant": data["slug"]},
        data={"username": data["owner_email"], "password": OWNER_PASSWORD},
    )
    assert login.status_code == 200 and login.json()["token_type"] == "bearer"


async def test_duplicate_slug_409(client, platform_headers):
    data = _new()
    assert (
        await client.post("/platform/v1/tenants", json=data, headers=platform_headers)
    ).status_code == 201
    resp = await client.post("/platform/v1/tenants", json=data, headers=platform_headers)
    assert_problem(resp, 409, "tenant-exists")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "admin"),
        ("slug", "Bad_Slug"),
        ("slug", "x"),
        ("slug", 42),
        ("plan", "gold"),
        ("owner_email", "not-an-email"),
        ("owner_password", "short"),
        ("name", "   "),
        ("surprise", "field"),
    ],
)
async def test_bad_input_is_422_with_field(client, platform_headers, field, value):
    resp = await client.post(
        "/platform/v1/tenants", json=_new(**{field: value}), headers=platform_headers
    )
    body = assert_problem(resp, 422, "validation-error")
    assert any(field in e["field"] for e in body["errors"]), body


async def test_malformed_json_is_422(client, platform_headers):
    resp = await client.post(
        "/platform/v1/tenants",
        content=b"{not json",
        headers={**platform_headers, "Content-Type": "application/json"},
    )
    assert_problem(resp, 422)


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc", "Bearer "])
async def test_operator_token_required(client, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = await client.get("/platform/v1/tenants", headers=headers)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"


async def test_list_is_cursor_paginated(client, platform_headers, make_tenant):
    for _ in range(3):
        make_tenant("page")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/platform/v1/tenants", params=params, headers=platform_headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += [t["slug"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 3
    assert_problem(
        await client.get(
            "/platform/v1/tenants", params={"cursor": "garbage!"}, headers=platform_headers
        ),
        422,
    )
    assert_problem(
        await client.get("/platform/v1/tenants", params={"limit": 101}, headers=platform_headers),
        422,
    )


async def test_show_patch_and_unknown(client, platform_headers, make_tenant):
    tenant = make_tenant("show")
    resp = await client.get(f"/platform/v1/tenants/{tenant.slug}", headers=platform_headers)
    assert resp.status_code == 200 and resp.json()["id"] == str(tenant.id)
    resp = await client.patch(
        f"/platform/v1/tenants/{tenant.slug}",
        json={"name": "Renamed", "plan": "enterprise"},
        headers=platform_headers,
    )
    assert resp.json()["name"] == "Renamed" and resp.json()["plan"] == "enterprise"
    assert_problem(
        await client.patch(
            f"/platform/v1/tenants/{tenant.slug}",
            json={"status": "deleting"},
            headers=platform_headers,
        ),
        422,
    )
    assert_problem(
        await client.get("/platform/v1/tenants/nope-nope", headers=platform_headers), 404
    )
    assert_problem(
        await client.patch(
            "/platform/v1/tenants/nope-nope", json={"name": "x"}, headers=platform_headers
        ),
        404,
    )


async def test_delete_refuses_at_once(client, platform_headers, make_tenant):
    """The schema drop itself is covered with a real worker in test_workers."""
    tenant = make_tenant("del")
    resp = await client.delete(f"/platform/v1/tenants/{tenant.slug}", headers=platform_headers)
    assert resp.status_code == 202 and resp.json()["status"] == "deleting"
    resp = await client.get("/api/v1/projects", headers={"X-Tenant": tenant.slug})
    assert_problem(resp, 404, "tenant-not-found")
    assert_problem(
        await client.delete("/platform/v1/tenants/nope-nope", headers=platform_headers), 404
    )


async def test_sweep_finds_tenants_stuck_deleting(make_tenant, sync_engine, sync_redis):
    from sqlalchemy import text, update

    from backend.platform import service
    from tenancy import provisioning
    from tenancy.registry import Tenant

    stuck, fresh = make_tenant("stuck"), make_tenant("fresh")
    for t in (stuck, fresh):
        provisioning.mark_deleting(sync_engine, t.slug, redis=sync_redis)
    with sync_engine.begin() as conn:
        conn.execute(
            update(Tenant)
            .where(Tenant.id == stuck.id)
            .values(updated_at=text("now() - interval '1 hour'"))
        )
    ids = service.tenants_stuck_deleting(sync_engine, 600)
    assert stuck.id in ids and fresh.id not in ids
    for t in (stuck, fresh):  # leave no 'deleting' tenants behind for other tests
        provisioning.drop_tenant(sync_engine, t.id, redis=sync_redis)
