"""Per-tenant rate limits through the whole app: plans and overrides from the platform API,
headers, 429 refusals, per-user, write and auth policies, shadow mode, tenant isolation.

The middleware's failure paths (Redis away or slow) and the concurrency limiter's release on
every exit path are in test_ratelimit_middleware.py; two API processes in
test_ratelimit_processes.py."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import SEEDED_PLANS, assert_problem, login, login_as

pytestmark = pytest.mark.asyncio(loop_scope="session")


def items(header: str) -> dict[str, dict[str, int]]:
    """A RateLimit / RateLimit-Policy field as {policy: {param: value}}."""
    found: dict[str, dict[str, int]] = {}
    for item in header.split(","):
        name, *params = item.strip().split(";")
        found[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return found


async def set_limits(
    client: httpx.AsyncClient, platform_headers: dict[str, str], slug: str, **limits: Any
) -> dict[str, Any]:
    resp = await client.put(
        f"/platform/v1/tenants/{slug}/limits", json=limits, headers=platform_headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_every_tenant_route_reports_its_policies(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant = make_tenant("rl")
    free = (await client.get("/platform/v1/plans/free", headers=platform_headers)).json()
    headers = await login(client, tenant)
    read = await client.get("/api/v1/projects", headers=headers)
    assert read.status_code == 200
    policy = items(read.headers["RateLimit-Policy"])
    assert policy == {
        "tenant": {"q": free["requests_per_minute"], "w": 60},
        "user": {"q": free["user_requests_per_minute"], "w": 60},
    }
    state = items(read.headers["RateLimit"])
    assert set(state) == {"tenant", "user"}
    assert state["tenant"]["r"] == free["requests_per_minute"] - 2  # the login, this request
    assert 0 < state["tenant"]["t"] <= 60
    write = await client.post(
        "/api/v1/projects", json={"name": "Limited", "key": "LIM"}, headers=headers
    )
    assert write.status_code == 201, write.text
    assert items(write.headers["RateLimit-Policy"])["write"] == {
        "q": free["write_requests_per_minute"],
        "w": 60,
    }
    missing = await client.get("/api/v1/no-such-route", headers=headers)
    assert missing.status_code == 404 and "RateLimit" in missing.headers
    # Platform routes and probes are not tenant routes: no limits, no headers.
    assert "RateLimit" not in (await client.get("/healthz")).headers


async def test_the_tenant_limit_refuses_with_429_and_a_consistent_retry_after(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str], sync_redis: Any
) -> None:
    tenant = make_tenant("rl")
    headers = await login(client, tenant)
    await set_limits(client, platform_headers, tenant.slug, requests_per_minute=5)
    remaining = [
        items((await client.get("/api/v1/projects", headers=headers)).headers["RateLimit"])
        for _ in range(4)
    ]
    # The login was the first of the 5 requests the minute allows.
    assert [r["tenant"]["r"] for r in remaining] == [3, 2, 1, 0]
    refused = await client.get("/api/v1/projects", headers=headers)
    body = assert_problem(refused, 429, "rate-limited")
    assert body["policy"] == "tenant" and "5 requests per 60 s" in body["detail"]
    state = items(refused.headers["RateLimit"])["tenant"]
    assert state["r"] == 0
    assert int(refused.headers["Retry-After"]) == max(1, state["t"]) and state["t"] <= 120
    # A refused request is not counted: the window still holds the 5 admitted ones.
    key = f"tf:{{{tenant.id}}}:rl:tenant"
    assert int(sync_redis.hget(key, "c")) == 5
    await client.get("/api/v1/projects", headers=headers)
    assert int(sync_redis.hget(key, "c")) == 5


async def test_one_tenant_at_its_limit_leaves_another_untouched(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str], sync_redis: Any
) -> None:
    busy, other = make_tenant("rl"), make_tenant("rl")
    busy_headers, other_headers = await login(client, busy), await login(client, other)
    # 3 a minute: each login took one.
    await set_limits(client, platform_headers, busy.slug, requests_per_minute=3)
    await set_limits(client, platform_headers, other.slug, requests_per_minute=3)
    for _ in range(2):
        assert (await client.get("/api/v1/projects", headers=busy_headers)).status_code == 200
    assert (await client.get("/api/v1/projects", headers=busy_headers)).status_code == 429
    resp = await client.get("/api/v1/projects", headers=other_headers)
    assert resp.status_code == 200 and items(resp.headers["RateLimit"])["tenant"]["r"] == 1
    # Every counter lives under its tenant's hash tag.
    for key in sync_redis.scan_iter(match=f"tf:{{{busy.id}}}:rl:*"):
        assert key.decode().startswith(f"tf:{{{busy.id}}}:")
    assert sync_redis.exists(f"tf:{{{other.id}}}:rl:tenant")


async def test_each_user_has_a_limit_of_their_own(
    client: httpx.AsyncClient,
    make_tenant: Any,
    add_user: Any,
    platform_headers: dict[str, str],
) -> None:
    tenant = make_tenant("rl")
    _, email = add_user(tenant, "member")
    owner = await login(client, tenant)
    member_token = (await login_as(client, tenant, email))["access_token"]
    member = {"X-Tenant": tenant.slug, "Authorization": f"Bearer {member_token}"}
    await set_limits(client, platform_headers, tenant.slug, user_requests_per_minute=2)
    for _ in range(2):
        assert (await client.get("/api/v1/projects", headers=owner)).status_code == 200
    refused = await client.get("/api/v1/projects", headers=owner)
    assert assert_problem(refused, 429, "rate-limited")["policy"] == "user"
    resp = await client.get("/api/v1/projects", headers=member)
    assert resp.status_code == 200
    assert items(resp.headers["RateLimit"])["user"]["r"] == 1


async def test_writes_have_their_own_limit(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant = make_tenant("rl")
    headers = await login(client, tenant)
    # The login (a POST) was the first write of the 2 a minute allows.
    await set_limits(client, platform_headers, tenant.slug, write_requests_per_minute=2)
    created = await client.post(
        "/api/v1/projects", json={"name": "A", "key": "AAA"}, headers=headers
    )
    assert created.status_code == 201
    refused = await client.post(
        "/api/v1/projects", json={"name": "B", "key": "BBB"}, headers=headers
    )
    assert assert_problem(refused, 429, "rate-limited")["policy"] == "write"
    assert (await client.get("/api/v1/projects", headers=headers)).status_code == 200


async def test_auth_routes_are_limited_per_client_address(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant = make_tenant("rl")
    await set_limits(client, platform_headers, tenant.slug, auth_requests_per_minute=2)
    form = {"username": tenant.email, "password": "wrong-password-123"}
    for _ in range(2):
        resp = await client.post("/api/v1/auth/login", data=form, headers={"X-Tenant": tenant.slug})
        assert resp.status_code == 401, resp.text
        assert items(resp.headers["RateLimit-Policy"])["auth"] == {"q": 2, "w": 60}
    refused = await client.post("/api/v1/auth/login", data=form, headers={"X-Tenant": tenant.slug})
    assert assert_problem(refused, 429, "rate-limited")["policy"] == "auth"


async def test_shadow_mode_counts_but_refuses_nothing(
    client: httpx.AsyncClient,
    make_tenant: Any,
    platform_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prometheus_client import REGISTRY

    def shadowed() -> float:
        value = REGISTRY.get_sample_value(
            "tenantflow_ratelimit_decisions_total",
            {"policy": "tenant", "decision": "shadow_refused"},
        )
        return value or 0.0

    plan = (await client.get("/platform/v1/plans/pro", headers=platform_headers)).json()
    body = {k: v for k, v in plan.items() if k not in ("name", "updated_at")}
    tenant = make_tenant("rl", plan="pro")
    headers = await login(client, tenant)
    await set_limits(client, platform_headers, tenant.slug, requests_per_minute=1)
    resp = await client.put(
        "/platform/v1/plans/pro", json={**body, "shadow": ["tenant"]}, headers=platform_headers
    )
    assert resp.status_code == 200, resp.text
    try:
        before = shadowed()
        with caplog.at_level("WARNING", logger="backend.ratelimit.middleware"):
            statuses = [
                (await client.get("/api/v1/projects", headers=headers)).status_code
                for _ in range(4)
            ]
        assert statuses == [200, 200, 200, 200]
        assert shadowed() - before == 4  # the login took the one request allowed
        assert f"tenant {tenant.slug} would be refused by policy tenant" in caplog.text
    finally:
        restored = await client.put("/platform/v1/plans/pro", json=body, headers=platform_headers)
        assert restored.status_code == 200
    assert (await client.get("/api/v1/projects", headers=headers)).status_code == 429


async def test_plans_can_be_read_and_replaced_by_operators(
    client: httpx.AsyncClient, platform_headers: dict[str, str], make_tenant: Any
) -> None:
    # The migration's defaults (the suite then raises every plan's limits: conftest).
    seeded = {
        name: (p["requests_per_minute"], p["user_requests_per_minute"])
        for name, p in SEEDED_PLANS.items()
    }
    assert seeded == {"free": (600, 120), "pro": (6000, 1200), "enterprise": (60000, 12000)}
    for plan in SEEDED_PLANS.values():  # auth stricter, writes a share of the tenant's
        assert plan["auth_requests_per_minute"] < plan["user_requests_per_minute"]
        assert plan["write_requests_per_minute"] < plan["requests_per_minute"]
        assert plan["concurrent_requests"] is None and plan["fail_closed"] == ["auth"]
    listed = await client.get("/platform/v1/plans", headers=platform_headers)
    assert listed.status_code == 200
    by_name = {p["name"]: p for p in listed.json()}
    assert set(by_name) == {"free", "pro", "enterprise"}

    original = {k: v for k, v in by_name["enterprise"].items() if k not in ("name", "updated_at")}
    tenant = make_tenant("rl", plan="enterprise")
    headers = await login(client, tenant)
    changed = {**original, "requests_per_minute": 1234, "concurrent_requests": 50}
    resp = await client.put("/platform/v1/plans/enterprise", json=changed, headers=platform_headers)
    try:
        assert resp.status_code == 200, resp.text
        assert resp.json()["requests_per_minute"] == 1234
        got = await client.get("/api/v1/projects", headers=headers)
        assert items(got.headers["RateLimit-Policy"])["tenant"]["q"] == 1234
    finally:
        await client.put("/platform/v1/plans/enterprise", json=original, headers=platform_headers)
    got = await client.get("/api/v1/projects", headers=headers)
    assert items(got.headers["RateLimit-Policy"])["tenant"]["q"] == original["requests_per_minute"]

    assert_problem(
        await client.put("/platform/v1/plans/gold", json=original, headers=platform_headers),
        404,
        "plan-not-found",
    )
    assert_problem(await client.get("/platform/v1/plans/gold", headers=platform_headers), 404)
    for bad in (
        {**original, "requests_per_minute": 0},
        {**original, "requests_per_minute": "600"},
        {**original, "shadow": ["everything"]},
        {**original, "burst": 5},
        {k: v for k, v in original.items() if k != "requests_per_minute"},
    ):
        resp = await client.put("/platform/v1/plans/free", json=bad, headers=platform_headers)
        assert_problem(resp, 422)
    assert_problem(await client.get("/platform/v1/plans"), 401)


async def test_tenant_overrides_set_keep_and_clear(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant = make_tenant("rl")
    free = (await client.get("/platform/v1/plans/free", headers=platform_headers)).json()
    path = f"/platform/v1/tenants/{tenant.slug}/limits"
    first = await set_limits(
        client, platform_headers, tenant.slug, requests_per_minute=50, concurrent_requests=3
    )
    assert first["overrides"]["requests_per_minute"] == 50
    assert first["effective"] == {
        "requests_per_minute": 50,
        "user_requests_per_minute": free["user_requests_per_minute"],
        "write_requests_per_minute": free["write_requests_per_minute"],
        "auth_requests_per_minute": free["auth_requests_per_minute"],
        "concurrent_requests": 3,
    }
    kept = await set_limits(client, platform_headers, tenant.slug, user_requests_per_minute=7)
    assert kept["overrides"]["requests_per_minute"] == 50  # left out: kept
    assert kept["effective"]["user_requests_per_minute"] == 7
    cleared = await set_limits(
        client, platform_headers, tenant.slug, requests_per_minute=None, concurrent_requests=None
    )
    assert cleared["overrides"]["requests_per_minute"] is None
    assert cleared["effective"]["requests_per_minute"] == free["requests_per_minute"]
    assert cleared["effective"]["concurrent_requests"] is None
    read = await client.get(path, headers=platform_headers)
    assert read.json() == cleared
    assert_problem(
        await client.put(
            f"/platform/v1/tenants/nope-{uuid.uuid4().hex[:6]}/limits",
            json={"requests_per_minute": 5},
            headers=platform_headers,
        ),
        404,
        "tenant-not-found",
    )
    for bad in ({"requests_per_minute": -1}, {"requests_per_minute": 1.5}, {"rpm": 5}):
        assert_problem(await client.put(path, json=bad, headers=platform_headers), 422)
    assert_problem(
        await client.put(
            path, content=b"{", headers={**platform_headers, "Content-Type": "application/json"}
        ),
        422,
    )


async def test_the_policy_header_follows_the_draft_syntax() -> None:
    from backend.ratelimit.limiter import Check, Decision, Outcome
    from backend.ratelimit.middleware import header_values

    decision = Decision(
        True,
        (
            Outcome(Check("tenant", "k1", 600, 60), False, 599, 41_200),
            Outcome(Check("user", "k2", 120, 60), True, 0, 6_001),
        ),
    )
    headers = dict(header_values(decision))
    assert headers[b"ratelimit-policy"] == b'"tenant";q=600;w=60, "user";q=120;w=60'
    assert headers[b"ratelimit"] == b'"tenant";r=599;t=42, "user";r=0;t=7'
    assert re.fullmatch(rb'("\w+";q=\d+;w=\d+)(, "\w+";q=\d+;w=\d+)*', headers[b"ratelimit-policy"])


async def test_a_limit_changed_while_redis_is_away_is_stored_and_logged(
    make_tenant: Any, sync_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import redis as redis_sync

    from backend.ratelimit import service
    from backend.ratelimit.schemas import LimitsIn

    tenant = make_tenant("rl")
    gone = redis_sync.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    with caplog.at_level("WARNING", logger="backend.ratelimit.service"):
        out = service.put_limits(
            sync_engine, gone, tenant.slug, LimitsIn(requests_per_minute=7), actor="test"
        )
    assert out.overrides.requests_per_minute == 7
    assert service.get_limits(sync_engine, tenant.slug).effective.requests_per_minute == 7
    assert "Redis is unavailable" in caplog.text
