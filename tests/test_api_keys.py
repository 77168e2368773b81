"""Tenant API keys: shown once, stored hashed, usable as bearer, bounded role, revocable."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import text

from tests.conftest import assert_problem, bearer, login_as


async def _owner(client, tenant):
    return bearer(tenant, (await login_as(client, tenant, tenant.email))["access_token"])


async def test_key_lifecycle(client, make_tenant, sync_engine):
    tenant = make_tenant("keys")
    owner = await _owner(client, tenant)
    resp = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "member"}, headers=owner
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    secret = created["key"]
    assert secret.startswith(f"tfk_{tenant.id.hex}_") and len(secret) >= 70
    assert resp.headers["location"] == f"/api/v1/api-keys/{created['id']}"
    # Stored as a hash only.
    with sync_engine.connect() as conn:
        stored = conn.execute(
            text(f'SELECT key_hash FROM "{tenant.record.schema_name}".api_keys')
        ).scalar_one()
    assert bytes(stored) == hashlib.sha256(secret.encode()).digest()
    # The key alone names the tenant: no X-Tenant needed.
    key_headers = {"Authorization": f"Bearer {secret}"}
    resp = await client.post("/api/v1/projects", json={"name": "by key"}, headers=key_headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["created_by"] is None
    listed = (await client.get("/api/v1/api-keys", headers=owner)).json()["items"]
    assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    assert listed[0]["prefix"] in secret
    # Revoked: refused at once.
    assert (
        await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner)
    ).status_code == 204
    assert_problem(
        await client.get("/api/v1/projects", headers=key_headers), 401, "invalid-api-key"
    )
    listed = (await client.get("/api/v1/api-keys", headers=owner)).json()["items"]
    assert listed[0]["revoked_at"] is not None
    actions = [
        e["action"] for e in (await client.get("/api/v1/audit", headers=owner)).json()["items"]
    ]
    assert "api_key.created" in actions and "api_key.revoked" in actions


async def test_expired_and_forged_keys_are_refused(client, make_tenant, sync_engine):
    tenant = make_tenant("keyexp")
    owner = await _owner(client, tenant)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    secret = (
        await client.post(
            "/api/v1/api-keys",
            json={"name": "t", "role": "viewer", "expires_at": soon},
            headers=owner,
        )
    ).json()["key"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/projects", headers=headers)).status_code == 200
    with sync_engine.begin() as conn:
        conn.execute(text(f'UPDATE "{tenant.record.schema_name}".api_keys SET expires_at = now()'))
    assert_problem(await client.get("/api/v1/projects", headers=headers), 401, "invalid-api-key")
    forged = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    assert_problem(
        await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {forged}"}), 401
    )


async def test_key_of_a_does_not_work_at_b(client, make_tenant):
    a, b = make_tenant("keya"), make_tenant("keyb")
    secret = (
        await client.post(
            "/api/v1/api-keys", json={"name": "a", "role": "admin"}, headers=await _owner(client, a)
        )
    ).json()["key"]
    resp = await client.get(
        "/api/v1/projects", headers={"Authorization": f"Bearer {secret}", "X-Tenant": b.slug}
    )
    assert_problem(resp, 401, "invalid-api-key")
    # A key with b's id spliced in is still a's secret: unknown at b.
    spliced = secret.replace(a.id.hex, b.id.hex)
    assert_problem(
        await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {spliced}"}), 401
    )


async def test_key_role_is_bounded_and_input_validated(client, make_tenant, add_user):
    tenant = make_tenant("keyrole")
    _, admin_email = add_user(tenant, "admin")
    admin = bearer(tenant, (await login_as(client, tenant, admin_email))["access_token"])
    member_owner = await client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "owner"}, headers=admin
    )
    assert_problem(member_owner, 422)  # no key is ever an owner
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    cases = [
        {"name": "x", "role": "admin", "expires_at": past},
        {"name": "x", "role": "admin", "expires_at": "2030-01-01T00:00:00"},  # no timezone
        {"name": "", "role": "admin"},
        {"name": "x", "role": "root"},
        {"name": "x"},
    ]
    for body in cases:
        assert_problem(await client.post("/api/v1/api-keys", json=body, headers=admin), 422)
    ok = await client.post("/api/v1/api-keys", json={"name": "x", "role": "admin"}, headers=admin)
    assert ok.status_code == 201


async def test_nul_in_key_name_and_invite_name_is_422(client, make_tenant):
    tenant = make_tenant("keynul")
    owner = await _owner(client, tenant)
    resp = await client.post(
        "/api/v1/api-keys", json={"name": "a\x00b", "role": "viewer"}, headers=owner
    )
    assert_problem(resp, 422)
    resp = await client.post(
        "/api/v1/invites/accept",
        json={"token": "x", "password": "long-enough-pw", "name": "a\x00b"},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(resp, 422)


async def test_key_follows_its_creator_and_cannot_manage(client, make_tenant, add_user):
    tenant = make_tenant("keycreator")
    admin_id, admin_email = add_user(tenant, "admin")
    admin = bearer(tenant, (await login_as(client, tenant, admin_email))["access_token"])
    owner = await _owner(client, tenant)
    secret = (
        await client.post("/api/v1/api-keys", json={"name": "k", "role": "admin"}, headers=admin)
    ).json()["key"]
    key = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/audit", headers=key)).status_code == 200
    # Keys never mint keys, manage users or invite.
    minted = await client.post(
        "/api/v1/api-keys", json={"name": "c", "role": "viewer"}, headers=key
    )
    assert_problem(minted, 403, "forbidden")
    assert_problem(await client.patch(f"/api/v1/users/{admin_id}", json={}, headers=key), 403)
    # The creator demoted: the key acts as a member now (no audit access).
    await client.patch(f"/api/v1/users/{admin_id}", json={"role": "member"}, headers=owner)
    assert_problem(await client.get("/api/v1/audit", headers=key), 403)
    assert (await client.get("/api/v1/projects", headers=key)).status_code == 200
    # The creator deactivated: the key is dead, and stays revoked after a reactivation.
    await client.delete(f"/api/v1/users/{admin_id}", headers=owner)
    assert_problem(await client.get("/api/v1/projects", headers=key), 401, "invalid-api-key")
    await client.patch(f"/api/v1/users/{admin_id}", json={"is_active": True}, headers=owner)
    assert_problem(await client.get("/api/v1/projects", headers=key), 401)
