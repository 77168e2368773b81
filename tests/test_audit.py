"""The audit trail: what is recorded, who may read it, and that it stays in its tenant."""

from __future__ import annotations

from tests.conftest import assert_problem, bearer, login_as


async def test_logins_are_recorded_and_listed_newest_first(client, make_tenant):
    tenant = make_tenant("aud")
    bad = await client.post(
        "/api/v1/auth/login",
        data={"username": tenant.email, "password": "wrong-password-123"},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(bad, 401)
    unknown = await client.post(
        "/api/v1/auth/login",
        data={"username": "nobody@example.com", "password": "wrong-password-123"},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(unknown, 401)
    owner = bearer(tenant, (await login_as(client, tenant, tenant.email))["access_token"])
    events = (await client.get("/api/v1/audit", headers=owner)).json()["items"]
    assert [e["action"] for e in events[:3]] == ["login.succeeded", "login.failed", "login.failed"]
    assert events[1]["details"] == {"email": "nobody@example.com"}
    assert events[1]["target_id"] is None
    assert events[2]["target_type"] == "user" and events[2]["target_id"]
    assert all(e["request_id"] for e in events[:3])
    failed = (
        await client.get("/api/v1/audit", params={"action": "login.failed"}, headers=owner)
    ).json()["items"]
    assert len(failed) == 2
    page = (await client.get("/api/v1/audit", params={"limit": 1}, headers=owner)).json()
    second = (
        await client.get(
            "/api/v1/audit", params={"limit": 1, "cursor": page["next_cursor"]}, headers=owner
        )
    ).json()
    assert second["items"][0]["id"] == events[1]["id"]


async def test_audit_is_per_tenant(client, make_tenant):
    a, b = make_tenant("auda"), make_tenant("audb")
    await login_as(client, a, a.email)
    b_owner = bearer(b, (await login_as(client, b, b.email))["access_token"])
    events = (await client.get("/api/v1/audit", headers=b_owner)).json()["items"]
    assert events and all(e["details"].get("email", b.email) != a.email for e in events)
    assert {e["actor_id"] for e in events if e["actor_id"]} == {
        (await client.get("/api/v1/users/me", headers=b_owner)).json()["id"]
    }
    # a's token at b's audit: refused.
    a_owner = (await login_as(client, a, a.email))["access_token"]
    assert_problem(
        await client.get(
            "/api/v1/audit", headers={"X-Tenant": b.slug, "Authorization": f"Bearer {a_owner}"}
        ),
        401,
    )


async def test_action_filter_is_validated(client, make_tenant):
    tenant = make_tenant("audfilter")
    owner = bearer(tenant, (await login_as(client, tenant, tenant.email))["access_token"])
    for bad in ("nope", "login.failed\x00", "x" * 100):
        resp = await client.get("/api/v1/audit", params={"action": bad}, headers=owner)
        assert_problem(resp, 422)
