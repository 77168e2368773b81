"""User administration: list, role changes, owner rules, last owner, deactivation, audit."""

from __future__ import annotations

import asyncio

from tests.conftest import assert_problem, bearer, login_as


async def _headers(client, tenant, email):
    return bearer(tenant, (await login_as(client, tenant, email))["access_token"])


async def test_list_and_get_users_paginated(client, make_tenant, add_user):
    tenant = make_tenant("ulist")
    for _ in range(3):
        add_user(tenant, "member")
    viewer_id, viewer_email = add_user(tenant, "viewer")
    headers = await _headers(client, tenant, viewer_email)
    first = await client.get("/api/v1/users", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await client.get(
        "/api/v1/users", params={"cursor": page["next_cursor"]}, headers=headers
    )
    emails = [u["email"] for u in page["items"] + rest.json()["items"]]
    assert len(emails) == 5 == len(set(emails)) and tenant.email in emails
    one = await client.get(f"/api/v1/users/{viewer_id}", headers=headers)
    assert one.json()["role"] == "viewer"
    assert "hashed_password" not in one.text
    assert_problem(
        await client.get("/api/v1/users", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=headers),
        422,
        "invalid-cursor",
    )


async def test_admin_changes_roles_but_not_owners(client, make_tenant, add_user):
    tenant = make_tenant("uroles")
    member_id, _ = add_user(tenant, "member")
    _, admin_email = add_user(tenant, "admin")
    admin = await _headers(client, tenant, admin_email)
    resp = await client.patch(f"/api/v1/users/{member_id}", json={"role": "viewer"}, headers=admin)
    assert resp.status_code == 200 and resp.json()["role"] == "viewer"
    assert_problem(
        await client.patch(f"/api/v1/users/{member_id}", json={"role": "owner"}, headers=admin),
        403,
        "owner-only",
    )
    owner = await _headers(client, tenant, tenant.email)
    me = (await client.get("/api/v1/users/me", headers=owner)).json()
    assert_problem(
        await client.patch(f"/api/v1/users/{me['id']}", json={"role": "admin"}, headers=admin),
        403,
        "owner-only",
    )
    assert_problem(await client.delete(f"/api/v1/users/{me['id']}", headers=admin), 403)
    resp = await client.patch(f"/api/v1/users/{member_id}", json={"role": "owner"}, headers=owner)
    assert resp.json()["role"] == "owner"
    for bad in ({"role": "root"}, {"is_active": "maybe"}, {"email": "x@y.z"}, {"role": None}):
        resp = await client.patch(f"/api/v1/users/{member_id}", json=bad, headers=owner)
        assert_problem(resp, 422)


async def test_last_owner_cannot_be_removed_even_concurrently(client, make_tenant, add_user):
    tenant = make_tenant("uowner")
    owner = await _headers(client, tenant, tenant.email)
    me = (await client.get("/api/v1/users/me", headers=owner)).json()
    assert_problem(
        await client.patch(f"/api/v1/users/{me['id']}", json={"role": "admin"}, headers=owner),
        409,
        "last-owner",
    )
    assert_problem(await client.delete(f"/api/v1/users/{me['id']}", headers=owner), 409)
    # Two owners demoting each other at the same time: exactly one succeeds.
    second_id, second_email = add_user(tenant, "owner")
    second = await _headers(client, tenant, second_email)
    results = await asyncio.gather(
        client.patch(f"/api/v1/users/{second_id}", json={"role": "member"}, headers=owner),
        client.patch(f"/api/v1/users/{me['id']}", json={"role": "member"}, headers=second),
    )
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    users = (
        await client.get(
            "/api/v1/users", headers=owner if results[1].status_code == 409 else second
        )
    ).json()
    owners = [u for u in users["items"] if u["role"] == "owner" and u["is_active"]]
    assert len(owners) == 1


async def test_role_change_applies_to_existing_tokens_and_is_audited(client, make_tenant, add_user):
    tenant = make_tenant("uaudit")
    admin_id, admin_email = add_user(tenant, "admin")
    admin = await _headers(client, tenant, admin_email)
    assert (await client.get("/api/v1/audit", headers=admin)).status_code == 200
    owner = await _headers(client, tenant, tenant.email)
    resp = await client.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"}, headers=owner)
    assert resp.status_code == 200
    # The same access token, now a viewer's: refused at once.
    assert_problem(await client.get("/api/v1/audit", headers=admin), 403)
    events = (
        await client.get("/api/v1/audit", params={"action": "user.role_changed"}, headers=owner)
    ).json()["items"]
    assert events[0]["target_id"] == str(admin_id)
    assert events[0]["details"] == {"from": "admin", "to": "viewer"}


async def test_reactivation_restores_login(client, make_tenant, add_user):
    tenant = make_tenant("ureact")
    user_id, email = add_user(tenant, "member")
    owner = await _headers(client, tenant, tenant.email)
    assert (await client.delete(f"/api/v1/users/{user_id}", headers=owner)).status_code == 204
    resp = await client.patch(f"/api/v1/users/{user_id}", json={"is_active": True}, headers=owner)
    assert resp.json()["is_active"] is True
    await login_as(client, tenant, email)
    actions = [
        e["action"] for e in (await client.get("/api/v1/audit", headers=owner)).json()["items"]
    ]
    assert "user.deactivated" in actions and "user.reactivated" in actions
