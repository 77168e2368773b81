"""Probes, request ids and problem+json for everything that goes wrong."""

from __future__ import annotations

import httpx

from tests.conftest import assert_problem, login


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_readyz_503_when_redis_is_away(settings):
    from backend.main import create_app

    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c,
    ):
        resp = await c.get("/readyz", headers={"X-Request-ID": "ready-1"})
    body = assert_problem(resp, 503, "not-ready")
    assert body["request_id"] == "ready-1" and resp.headers["retry-after"]
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("error")


async def test_request_id_echoed_and_in_problems(client):
    resp = await client.get("/nowhere", headers={"X-Request-ID": "abc-123"})
    body = assert_problem(resp, 404)
    assert resp.headers["x-request-id"] == "abc-123" and body["request_id"] == "abc-123"
    odd = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


async def test_method_not_allowed_is_problem(client):
    assert_problem(await client.put("/healthz"), 405)


async def test_validation_errors_list_each_field(client, make_tenant):
    tenant = make_tenant("val")
    headers = await login(client, tenant)
    resp = await client.post(
        "/api/v1/projects", json={"name": "", "description": 5, "x": 1}, headers=headers
    )
    body = assert_problem(resp, 422, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert {"body.name", "body.description", "body.x"} <= fields
    for bad in ("not-a-uuid", "1"):
        assert_problem(await client.get(f"/api/v1/projects/{bad}", headers=headers), 422)
    assert_problem(
        await client.get("/api/v1/projects", params={"cursor": "%%%"}, headers=headers), 422
    )
    assert_problem(await client.get("/api/v1/projects", params={"limit": 0}, headers=headers), 422)
    assert_problem(
        await client.patch(
            "/api/v1/projects/00000000-0000-0000-0000-000000000000",
            json={"archived": "yes"},
            headers=headers,
        ),
        422,
    )


async def test_login_form_missing_fields_is_422(client, make_tenant):
    tenant = make_tenant("form")
    resp = await client.post("/api/v1/auth/login", data={}, headers={"X-Tenant": tenant.slug})
    assert_problem(resp, 422)


async def test_other_tenants_project_is_404(client, make_tenant):
    a, b = make_tenant("own-a"), make_tenant("own-b")
    ha, hb = await login(client, a), await login(client, b)
    created = await client.post("/api/v1/projects", json={"name": "secret"}, headers=ha)
    pid = created.json()["id"]
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"name": "pwned"}} if method == "PATCH" else {}
        resp = await client.request(method, f"/api/v1/projects/{pid}", headers=hb, **kwargs)
        assert_problem(resp, 404, "project-not-found")
    still = await client.get(f"/api/v1/projects/{pid}", headers=ha)
    assert still.json()["name"] == "secret"


async def test_projects_pagination(client, make_tenant):
    tenant = make_tenant("pg")
    headers = await login(client, tenant)
    for i in range(5):
        await client.post("/api/v1/projects", json={"name": f"p{i}"}, headers=headers)
    names, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/projects", params=params, headers=headers)).json()
        names += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == [f"p{i}" for i in range(5)]


async def test_missing_token_is_401(client, make_tenant):
    tenant = make_tenant("anon")
    resp = await client.get("/api/v1/projects", headers={"X-Tenant": tenant.slug})
    assert_problem(resp, 401)


async def _app_client(settings, **changes):
    from backend.main import create_app

    app = create_app(settings.model_copy(update=changes))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")


async def test_tenant_routes_work_while_redis_is_away(settings, make_tenant, client):
    tenant = make_tenant("redis-away")
    headers = await login(client, tenant)
    app, c = await _app_client(settings, redis_url="redis://127.0.0.1:1/0")
    async with app.router.lifespan_context(app), c:
        created = await c.post("/api/v1/projects", json={"name": "still works"}, headers=headers)
        assert created.status_code == 201, created.text
        # Rate limits fail open for the project's POST (above) but closed on the auth routes
        # (the plans' default): login is never unthrottled. The login throttle, which cannot
        # count failures without Redis either, would refuse it too.
        assert "RateLimit" not in created.headers
        resp = await c.post(
            "/api/v1/auth/login",
            data={"username": tenant.email, "password": tenant.password},
            headers={"X-Tenant": tenant.slug},
        )
        assert_problem(resp, 503, "rate-limit-unavailable")


async def test_database_away_is_503_not_500(settings, make_tenant, client):
    tenant = make_tenant("db-away")
    headers = await login(client, tenant)  # the registry entry is now cached in Redis too
    app, c = await _app_client(
        settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    )
    async with app.router.lifespan_context(app), c:
        for path in ("/api/v1/projects", "/api/v1/users/me"):
            resp = await c.get(path, headers=headers)
            body = assert_problem(resp, 503, "service-unavailable")
            assert "PostgreSQL" in body["detail"] and resp.headers["retry-after"] == "5"
        # Not cached anywhere: the registry lookup itself fails.
        resp = await c.get("/api/v1/projects", headers={"X-Tenant": "never-seen-before"})
        assert_problem(resp, 503, "service-unavailable")
        resp = await c.get(
            "/platform/v1/tenants",
            headers={"Authorization": f"Bearer {settings.platform_token.get_secret_value()}"},
        )
        assert_problem(resp, 503, "service-unavailable")
