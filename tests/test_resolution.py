"""Tenant resolution: header, subdomain, token claim; unknown, suspended, foreign tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import jwt
import pytest

from backend.kit.resources import Resources
from tenancy import provisioning
from tenancy.registry import RegistryCache
from tests.conftest import BASE_DOMAIN, assert_problem, login


def _token(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}


async def test_subdomain_resolves(client, make_tenant, settings):
    """Only the Host names the tenant: no X-Tenant header, no token to fall back on."""
    tenant = make_tenant("sub")
    host = {"Host": f"{tenant.slug}.{BASE_DOMAIN}"}
    anonymous = await client.get("/api/v1/projects", headers=host)
    assert_problem(anonymous, 401)  # resolved (not 400 tenant-required), then unauthenticated
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": tenant.email, "password": tenant.password},
        headers=host,
    )
    assert resp.status_code == 200, resp.text
    claims = jwt.decode(
        resp.json()["access_token"],
        settings.secret_key.get_secret_value(),
        algorithms=["HS256"],
        audience=settings.jwt_audience,
    )
    assert claims["tid"] == str(tenant.id)


async def test_token_claim_resolves_without_header(client, make_tenant):
    tenant = make_tenant("tok")
    headers = await login(client, tenant)
    resp = await client.get("/api/v1/users/me", headers=_token(headers))
    assert resp.status_code == 200 and resp.json()["email"] == tenant.email


async def test_header_wins_over_subdomain(client, make_tenant):
    a, b = make_tenant("hdr-a"), make_tenant("hdr-b")
    headers = await login(client, a)
    resp = await client.get(
        "/api/v1/users/me", headers={**headers, "Host": f"{b.slug}.{BASE_DOMAIN}"}
    )
    assert resp.status_code == 200


async def test_token_of_a_at_b_is_401(client, make_tenant):
    a, b = make_tenant("cross-a"), make_tenant("cross-b")
    headers_a = await login(client, a)
    for extra in ({"X-Tenant": b.slug}, {"Host": f"{b.slug}.{BASE_DOMAIN}"}):
        resp = await client.get("/api/v1/users/me", headers={**_token(headers_a), **extra})
        assert_problem(resp, 401)
    resp = await client.get("/api/v1/projects", headers={**_token(headers_a), "X-Tenant": b.slug})
    assert_problem(resp, 401)


async def test_unknown_tenant_404(client):
    for slug in ("no-such-tenant", "Bad Slug!", "x" * 300):
        resp = await client.get("/api/v1/projects", headers={"X-Tenant": slug})
        assert_problem(resp, 404, "tenant-not-found")
    resp = await client.get("/api/v1/projects", headers={"Host": f"ghost.{BASE_DOMAIN}"})
    assert_problem(resp, 404, "tenant-not-found")


async def test_no_tenant_named_is_400(client):
    body = assert_problem(await client.get("/api/v1/projects"), 400, "tenant-required")
    assert body["request_id"]
    # A token that is not ours names no tenant either.
    resp = await client.get("/api/v1/projects", headers={"Authorization": "Bearer not-a-jwt"})
    assert_problem(resp, 400, "tenant-required")


async def test_suspended_403_then_resumed(client, make_tenant, platform_headers):
    tenant = make_tenant("susp")
    headers = await login(client, tenant)
    resp = await client.patch(
        f"/platform/v1/tenants/{tenant.slug}",
        json={"status": "suspended"},
        headers=platform_headers,
    )
    assert resp.status_code == 200 and resp.json()["status"] == "suspended"
    assert_problem(await client.get("/api/v1/users/me", headers=headers), 403, "tenant-suspended")
    assert_problem(await client.get("/api/v1/users/me", headers=_token(headers)), 403)
    resp = await client.patch(
        f"/platform/v1/tenants/{tenant.slug}", json={"status": "active"}, headers=platform_headers
    )
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200


async def test_bad_tokens_are_401(client, make_tenant, settings):
    tenant = make_tenant("jwt")
    key = settings.secret_key.get_secret_value()
    now = dt.datetime.now(dt.UTC)
    base = {
        "sub": str(uuid.uuid4()),
        "tid": str(tenant.id),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }

    def sign(claims, secret=key, alg="HS256", kid="primary"):
        headers = {"kid": kid, "typ": "at+jwt"} if kid else {"typ": "at+jwt"}
        return jwt.encode(claims, secret, alg, headers=headers)

    me = (await client.get("/api/v1/users/me", headers=await login(client, tenant))).json()
    good = {**base, "sub": me["id"]}
    cases = {
        "expired": sign({**good, "exp": now - dt.timedelta(seconds=30)}),
        "not yet valid": sign({**good, "nbf": now + dt.timedelta(minutes=1)}),
        "wrong key": sign(good, "another-secret-key-of-enough-length!!"),
        "no kid": sign(good, kid=None),
        "unknown kid": sign(good, kid="retired"),
        "wrong audience": sign({**good, "aud": "other"}),
        "wrong issuer": sign({**good, "iss": "other"}),
        "alg none": jwt.encode(good, None, "none", headers={"kid": "primary", "typ": "at+jwt"}),
        "untyped header": jwt.encode(good, key, "HS256", headers={"kid": "primary"}),
        "unknown user": sign(base),
        "not an access token": sign({**good, "typ": "refresh"}),
        "no jti": sign({k: v for k, v in good.items() if k != "jti"}),
    }
    ok = {"X-Tenant": tenant.slug, "Authorization": "Bearer " + sign(good)}
    assert (await client.get("/api/v1/users/me", headers=ok)).status_code == 200
    for name, token in cases.items():
        resp = await client.get(
            "/api/v1/users/me",
            headers={"X-Tenant": tenant.slug, "Authorization": f"Bearer {token}"},
        )
        assert_problem(resp, 401), name


async def test_deleting_tenant_is_404(client, make_tenant, sync_engine, sync_redis):
    tenant = make_tenant("gone")
    headers = await login(client, tenant)
    provisioning.mark_deleting(sync_engine, tenant.slug, redis=sync_redis)
    await asyncio.sleep(0.2)  # the invalidation listener drops the local copy
    assert_problem(await client.get("/api/v1/users/me", headers=headers), 404)


async def test_change_reaches_other_process_cache_via_pubsub(
    settings, make_tenant, sync_engine, sync_redis
):
    """A second Resources stands for another API process with a long local TTL."""
    tenant = make_tenant("pub")
    other = Resources.open(settings.model_copy(update={"registry_local_ttl_seconds": 60}))
    other.start_listening()
    try:
        await asyncio.sleep(0.2)
        assert (await other.registry.by_slug(tenant.slug)).status == "active"
        provisioning.set_status(sync_engine, tenant.slug, "suspended", redis=sync_redis)
        for _ in range(20):  # well under the listener's reconnect period
            record = await other.registry.by_slug(tenant.slug)
            if record.status == "suspended":
                break
            await asyncio.sleep(0.05)
        assert record.status == "suspended"
    finally:
        await other.close()


async def test_registry_lookup_survives_redis_outage(settings, make_tenant):
    tenant = make_tenant("nored")
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    res = Resources.open(dead)
    try:
        cache = RegistryCache(res.engine, res.redis, local_ttl=0, redis_ttl=10)
        record = await cache.by_slug(tenant.slug)
        assert record is not None and record.id == tenant.id
        assert await cache.by_id(tenant.id) == record
        assert await cache.by_slug("nobody-here") is None
    finally:
        await res.close()


@pytest.mark.parametrize("host", ["evil.com", f"a.b.{BASE_DOMAIN}", BASE_DOMAIN])
async def test_hosts_outside_base_domain_name_no_tenant(client, host):
    assert_problem(await client.get("/api/v1/projects", headers={"Host": host}), 400)


async def test_cache_fill_that_raced_a_change_is_dropped(settings, make_tenant, sync_redis):
    """A reader that loaded the row before a change must not write the old row back."""
    from tenancy import keys, registry

    tenant = make_tenant("race")
    res = Resources.open(settings)
    try:
        cache = res.registry
        cached, generation = await cache._from_redis("slug", tenant.slug)
        assert cached is None and generation is not None
        stale = await cache._from_db("slug", tenant.slug)
        registry.invalidate(sync_redis, stale)  # a change lands between read and fill
        await cache._to_redis(stale, generation)
        assert sync_redis.get(keys.registry_cache_key("slug", tenant.slug)) is None
        _, fresh_generation = await cache._from_redis("slug", tenant.slug)
        await cache._to_redis(stale, fresh_generation)
        assert sync_redis.get(keys.registry_cache_key("slug", tenant.slug)) is not None
    finally:
        await res.close()
