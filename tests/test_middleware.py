"""The tenant middleware: tenants behind the migration head, and apps mounted under a prefix."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from backend.identity.service import hash_password, seed_owner
from tenancy import migrate, provisioning
from tests.conftest import OWNER_PASSWORD, assert_problem, login

PREVIOUS = migrate.revisions_before("tenant", migrate.head("tenant"))[0]


async def test_tenant_behind_head_is_503_until_migrated(app, client, sync_engine, sync_redis):
    """A tenant whose schema lacks the newest tables: 503 tenant-migrating, not 500."""
    slug = f"behind-{uuid.uuid4().hex[:8]}"
    owner: dict[str, uuid.UUID] = {}
    hashed = hash_password(OWNER_PASSWORD)

    def seed(conn, tenant):
        owner["id"] = seed_owner(conn, tenant, f"o@{slug}.example.com", hashed)

    record = provisioning.create_tenant(
        sync_engine, slug=slug, name="Behind", target=PREVIOUS, seed=seed, redis=sync_redis
    )
    assert record.schema_revision == PREVIOUS  # no projects table in its schema
    token = app.state.tokens.issue(user_id=owner["id"], role="owner", tenant=record)
    headers = {"X-Tenant": slug, "Authorization": f"Bearer {token}"}
    resp = await client.get("/api/v1/projects", headers=headers)
    body = assert_problem(resp, 503, "tenant-migrating")
    assert resp.headers["retry-after"] and body["request_id"]
    login = await client.post(
        "/api/v1/auth/login",
        data={"username": f"o@{slug}.example.com", "password": OWNER_PASSWORD},
        headers={"X-Tenant": slug},
    )
    assert_problem(login, 503, "tenant-migrating")

    report = await asyncio.to_thread(
        migrate.migrate_all, sync_engine, jobs=1, tenants=[slug], redis=sync_redis
    )
    assert report.ok and report.pending == 1
    await asyncio.sleep(0.2)  # the invalidation listener drops the local copy
    resp = await client.get("/api/v1/projects", headers=headers)
    assert resp.status_code == 200, resp.text


async def test_tenant_at_a_newer_revision_is_served(client, make_tenant, sync_engine, sync_redis):
    """Migrations of a release run before its code: the previous code keeps serving."""
    from sqlalchemy import update

    from tenancy import registry
    from tenancy.registry import Tenant

    tenant = make_tenant("newer")
    headers = await login(client, tenant)

    def set_revision(revision: str | None) -> None:
        with sync_engine.begin() as conn:
            conn.execute(
                update(Tenant).where(Tenant.id == tenant.id).values(schema_revision=revision)
            )
        registry.invalidate(sync_redis, tenant.record)

    set_revision("9999_future")
    try:
        await asyncio.sleep(0.2)
        resp = await client.get("/api/v1/projects", headers=headers)
        assert resp.status_code == 200, resp.text
    finally:  # other tests count tenants per revision
        set_revision(tenant.record.schema_revision)


async def test_tenant_routes_resolve_under_a_root_path(app, make_tenant):
    """Behind a proxy prefix (uvicorn --root-path /tf) the path still includes /tf."""
    tenant = make_tenant("root")
    transport = httpx.ASGITransport(app=app, root_path="/tf")
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        assert_problem(await c.get("/tf/api/v1/projects"), 400, "tenant-required")
        login = await c.post(
            "/tf/api/v1/auth/login",
            data={"username": tenant.email, "password": tenant.password},
            headers={"X-Tenant": tenant.slug},
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        resp = await c.get("/tf/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.json()["items"] == []
        # Platform routes stay outside the tenant middleware.
        assert_problem(await c.get("/tf/platform/v1/tenants"), 401)
