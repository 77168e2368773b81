"""Input PostgreSQL cannot store (NUL) and forged cursors: 422 problems, never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import Request
from sqlalchemy import text

from backend.kit.pagination import encode_cursor
from tests.conftest import OWNER_PASSWORD, assert_problem, login

NUL = "a\x00b"


def _fields(body: dict) -> set[str]:
    return {e["field"] for e in body["errors"]}


async def test_nul_in_project_text_is_422(client, make_tenant):
    tenant = make_tenant("nul")
    headers = await login(client, tenant)
    for payload, field in (
        ({"name": NUL}, "body.name"),
        ({"name": "ok", "description": NUL}, "body.description"),
    ):
        resp = await client.post("/api/v1/projects", json=payload, headers=headers)
        assert field in _fields(assert_problem(resp, 422, "validation-error"))
    made = await client.post("/api/v1/projects", json={"name": "ok"}, headers=headers)
    url = f"/api/v1/projects/{made.json()['id']}"
    for payload, field in (
        ({"name": NUL}, "body.name"),
        ({"description": NUL}, "body.description"),
    ):
        resp = await client.patch(url, json=payload, headers=headers)
        assert field in _fields(assert_problem(resp, 422, "validation-error"))


async def test_nul_in_login_is_422(client, make_tenant):
    tenant = make_tenant("nul-login")
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": "o\x00@x.example.com", "password": OWNER_PASSWORD},
        headers={"X-Tenant": tenant.slug},
    )
    assert _fields(assert_problem(resp, 422, "validation-error")) == {"body.username"}


async def test_nul_in_platform_input_is_422(client, platform_headers, make_tenant):
    slug = f"p-{uuid.uuid4().hex[:10]}"
    resp = await client.post(
        "/platform/v1/tenants",
        json={
            "slug": slug,
            "name": NUL,
            "owner_email": f"o@{slug}.example.com",
            "owner_password": OWNER_PASSWORD,
        },
        headers=platform_headers,
    )
    assert "body.name" in _fields(assert_problem(resp, 422, "validation-error"))
    tenant = make_tenant("nul-op")
    resp = await client.patch(
        f"/platform/v1/tenants/{tenant.slug}", json={"name": NUL}, headers=platform_headers
    )
    assert "body.name" in _fields(assert_problem(resp, 422, "validation-error"))
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        resp = await client.request(
            method, "/platform/v1/tenants/a%00b", headers=platform_headers, **kwargs
        )
        assert "path.slug" in _fields(assert_problem(resp, 422, "validation-error")), method


BAD_CURSORS = {
    "int id": ["2024-01-01T00:00:00+00:00", 5],
    "int date": [5, str(uuid.uuid4())],
    "nulls": [None, None],
    "object": {"a": 1, "b": 2},
    "nested": [["2024-01-01T00:00:00+00:00"], str(uuid.uuid4())],
    "naive date": ["2024-01-01T00:00:00", str(uuid.uuid4())],
    "not a uuid": ["2024-01-01T00:00:00+00:00", "nope"],
}


@pytest.mark.parametrize("values", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
async def test_forged_cursor_is_422_invalid_cursor(client, make_tenant, platform_headers, values):
    tenant = make_tenant("cur")
    headers = await login(client, tenant)
    cursor = encode_cursor(values)
    for url, hdrs in (("/api/v1/projects", headers), ("/platform/v1/tenants", platform_headers)):
        resp = await client.get(url, params={"cursor": cursor}, headers=hdrs)
        assert_problem(resp, 422, "invalid-cursor")


async def test_data_error_is_422_not_500(settings):
    """The safety net for a value that passed validation but PostgreSQL refuses."""
    from backend.main import create_app

    app = create_app(settings)

    @app.get("/test-only/store")
    async def store(request: Request) -> dict[str, str]:
        async with request.app.state.resources.engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:v AS text)"), {"v": NUL})
        return {}

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c,
    ):
        body = assert_problem(await c.get("/test-only/store"), 422, "invalid-data")
        assert body["request_id"]


def test_deadlock_and_serialization_failures_are_409_retry():
    from psycopg import errors as pg_errors
    from sqlalchemy.exc import OperationalError

    from backend.kit.errors import unavailable_problem

    for orig in (pg_errors.DeadlockDetected("deadlock"), pg_errors.SerializationFailure("x")):
        problem = unavailable_problem(OperationalError("UPDATE ...", {}, orig))
        assert (problem.status, problem.code) == (409, "concurrent-update")
    away = unavailable_problem(OperationalError("SELECT 1", {}, pg_errors.OperationalError("x")))
    assert (away.status, away.code) == (503, "service-unavailable")
