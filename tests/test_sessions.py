"""Refresh tokens: rotation, reuse detection, logout, expiry, deactivation, tenant binding."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.conftest import assert_problem, bearer, login_as


async def _refresh(client, tenant, token):
    return await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token}, headers={"X-Tenant": tenant.slug}
    )


async def test_login_returns_token_pair(client, make_tenant):
    tenant = make_tenant("pair")
    body = await login_as(client, tenant, tenant.email)
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["refresh_token"].startswith("tfr_") and len(body["refresh_token"]) >= 40


def _age_used_tokens(sync_engine, tenant) -> None:
    with sync_engine.begin() as conn:
        conn.execute(
            text(
                f'UPDATE "{tenant.record.schema_name}".refresh_tokens '
                "SET used_at = used_at - interval '1 minute' WHERE used_at IS NOT NULL"
            )
        )


async def test_refresh_rotates_and_reuse_revokes_family(client, make_tenant, sync_engine):
    tenant = make_tenant("rot")
    first = await login_as(client, tenant, tenant.email)
    resp = await _refresh(client, tenant, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await client.get("/api/v1/users/me", headers=bearer(tenant, second["access_token"]))
    assert me.status_code == 200
    # The spent token again, right away: refused, but taken for the client's own race.
    assert_problem(await _refresh(client, tenant, first["refresh_token"]), 401)
    me = await client.get("/api/v1/users/me", headers=bearer(tenant, second["access_token"]))
    _age_used_tokens(sync_engine, tenant)
    # Later: theft. Refused, and its successor dies with the family.
    assert_problem(await _refresh(client, tenant, first["refresh_token"]), 401)
    assert_problem(await _refresh(client, tenant, second["refresh_token"]), 401)
    # Another login (another family) is untouched.
    other = await login_as(client, tenant, tenant.email)
    assert (await _refresh(client, tenant, other["refresh_token"])).status_code == 200


async def test_parallel_refresh_of_one_token_succeeds_once(client, make_tenant, sync_engine):
    tenant = make_tenant("race")
    token = (await login_as(client, tenant, tenant.email))["refresh_token"]
    results = await asyncio.gather(*(_refresh(client, tenant, token) for _ in range(10)))
    assert sorted(r.status_code for r in results).count(200) == 1
    # Two tabs racing is not theft: the winner's session lives on.
    [winner] = [r.json() for r in results if r.status_code == 200]
    assert (await _refresh(client, tenant, winner["refresh_token"])).status_code == 200
    with sync_engine.connect() as conn:
        expiries = conn.execute(
            text(f'SELECT DISTINCT expires_at FROM "{tenant.record.schema_name}".refresh_tokens')
        ).all()
    assert len(expiries) == 1  # rotation never extends the family's lifetime


async def test_logout_racing_a_refresh_ends_the_session(client, make_tenant):
    tenant = make_tenant("lrace")
    for _ in range(15):
        token = (await login_as(client, tenant, tenant.email))["refresh_token"]
        refreshed, _ = await asyncio.gather(
            _refresh(client, tenant, token),
            client.post(
                "/api/v1/auth/logout",
                json={"refresh_token": token},
                headers={"X-Tenant": tenant.slug},
            ),
        )
        if refreshed.status_code == 200:
            successor = refreshed.json()["refresh_token"]
            assert_problem(await _refresh(client, tenant, successor), 401)


async def test_logout_revokes_family_and_is_idempotent(client, make_tenant):
    tenant = make_tenant("bye")
    first = await login_as(client, tenant, tenant.email)
    second = (await _refresh(client, tenant, first["refresh_token"])).json()
    resp = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": first["refresh_token"]},
        headers={"X-Tenant": tenant.slug},
    )
    assert resp.status_code == 204
    assert_problem(await _refresh(client, tenant, second["refresh_token"]), 401)
    again = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": "tfr_unknown"},
        headers={"X-Tenant": tenant.slug},
    )
    assert again.status_code == 204


async def test_expired_refresh_token_is_refused(client, make_tenant, sync_engine):
    tenant = make_tenant("exp")
    token = (await login_as(client, tenant, tenant.email))["refresh_token"]
    with sync_engine.begin() as conn:
        conn.execute(
            text(f'UPDATE "{tenant.record.schema_name}".refresh_tokens SET expires_at = now()')
        )
    assert_problem(await _refresh(client, tenant, token), 401, "invalid-refresh-token")


async def test_refresh_token_is_not_an_access_token_and_vice_versa(client, make_tenant):
    tenant = make_tenant("kind")
    body = await login_as(client, tenant, tenant.email)
    assert_problem(
        await client.get("/api/v1/users/me", headers=bearer(tenant, body["refresh_token"])), 401
    )
    assert_problem(await _refresh(client, tenant, body["access_token"]), 401)


async def test_refresh_token_of_a_is_refused_at_b(client, make_tenant):
    a, b = make_tenant("rfa"), make_tenant("rfb")
    token = (await login_as(client, a, a.email))["refresh_token"]
    assert_problem(await _refresh(client, b, token), 401)
    assert (await _refresh(client, a, token)).status_code == 200


async def test_deactivated_user_loses_access_and_refresh(client, make_tenant, add_user):
    tenant = make_tenant("deact")
    _, email = add_user(tenant, "member")
    member = await login_as(client, tenant, email)
    owner = await login_as(client, tenant, tenant.email)
    me = await client.get("/api/v1/users/me", headers=bearer(tenant, member["access_token"]))
    resp = await client.delete(
        f"/api/v1/users/{me.json()['id']}", headers=bearer(tenant, owner["access_token"])
    )
    assert resp.status_code == 204, resp.text
    assert_problem(
        await client.get("/api/v1/users/me", headers=bearer(tenant, member["access_token"])), 401
    )
    assert_problem(await _refresh(client, tenant, member["refresh_token"]), 401)
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": email, "password": tenant.password},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(resp, 401, "invalid-credentials")


async def test_refresh_body_is_validated(client, make_tenant):
    tenant = make_tenant("rbody")
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x" * 3000}, {"refresh_token": 5}):
        assert_problem(
            await client.post("/api/v1/auth/refresh", json=body, headers={"X-Tenant": tenant.slug}),
            422,
        )
