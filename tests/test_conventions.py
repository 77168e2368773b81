"""Cross-cutting REST conventions: body limit, CORS, 405 Allow, the OpenAPI document."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import assert_problem, login

PROBLEM_JSON = "application/problem+json"
ROOTS = ("/api/v1/", "/platform/v1/")
#: Public operations: no caller, so no 401/403 (they answer 4xx of their own).
#: Create-or-replace operations: the path names what the body creates, so no 404.
UPSERTS = {("put", "/platform/v1/flags/{name}"), ("put", "/platform/v1/segments/{segment_id}")}
PUBLIC = {
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/forgot-password",
    "/api/v1/auth/reset-password",
    "/api/v1/invites/accept",
    "/platform/v1/auth/login",
}


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, make_tenant: Any, settings: Any
) -> None:
    tenant = make_tenant("big")
    headers = await login(client, tenant)
    big = b'{"name": "x", "description": "' + b"y" * settings.max_body_bytes + b'"}'
    declared = await client.post(
        "/api/v1/projects", content=big, headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(declared, 413, "payload-too-large")

    async def stream() -> AsyncIterator[bytes]:  # chunked: no Content-Length to trust
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await client.post(
        "/api/v1/projects",
        content=stream(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "payload-too-large")
    listed = await client.get("/api/v1/projects", headers=headers)
    assert listed.json()["items"] == []
    # Just under the limit is fine (the description's own 10 000 limit answers 422, not 413).
    fits = await client.post(
        "/api/v1/projects",
        json={"name": "x", "description": "y" * 20_000},
        headers=headers,
    )
    assert_problem(fits, 422, "validation-error")


async def test_cors_exposes_and_allows_the_convention_headers(settings: Any) -> None:
    from backend.main import create_app

    app = create_app(settings.model_copy(update={"cors_origins": ["https://app.example.com"]}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        pre = await c.options(
            "/api/v1/projects",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "if-match, idempotency-key, if-none-match",
            },
        )
        assert pre.status_code == 200, pre.text
        allowed = pre.headers["access-control-allow-headers"].lower()
        for name in ("if-match", "if-none-match", "idempotency-key", "x-tenant", "authorization"):
            assert name in allowed
        refused = await c.options(
            "/api/v1/projects",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers
        simple = await c.get("/healthz", headers={"Origin": "https://app.example.com"})
    exposed = {
        h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "etag",
        "location",
        "x-request-id",
        "retry-after",
        "idempotent-replayed",
        "x-cache",
    } <= exposed


async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    headers = await login(client, make_tenant("allow"))
    resp = await client.put("/api/v1/projects", headers=headers)
    assert_problem(resp, 405, "method-not-allowed")
    assert set(resp.headers["allow"].split(", ")) >= {"GET", "POST"}
    # /users/me is not /users/{user_id}: PATCH there is 405, not a 422 about the id "me".
    me = await client.patch("/api/v1/users/me", json={}, headers=headers)
    assert_problem(me, 405, "method-not-allowed")
    assert "PATCH" not in me.headers["allow"] and "GET" in me.headers["allow"]


@pytest.fixture(scope="module")
def spec(app: Any) -> dict[str, Any]:
    return app.openapi()  # type: ignore[no-any-return]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith(ROOTS)
        for method, op in ops.items()
    ]


def test_every_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    assert len(operations) >= 25
    missing = []
    for path, method, op in operations:
        label = f"{method.upper()} {path}"
        responses = op["responses"]
        if not op.get("summary"):
            missing.append(f"{label}: summary")
        takes_input = op.get("parameters") or op.get("requestBody")
        if takes_input and "422" not in responses:
            missing.append(f"{label}: 422")
        if path not in PUBLIC:
            for status in ("401", "403") if path.startswith("/api/") else ("401",):
                if status not in responses:
                    missing.append(f"{label}: {status}")
            if not op.get("security"):
                missing.append(f"{label}: security")
        if "{" in path and "404" not in responses and (method, path) not in UPSERTS:
            missing.append(f"{label}: 404")
        if op.get("requestBody") and "413" not in responses:
            missing.append(f"{label}: 413 (a body over the limit)")
        if "503" not in responses:
            missing.append(f"{label}: 503 (PostgreSQL or Redis away)")
        idempotent = any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))
        if idempotent and "409" not in responses:
            missing.append(f"{label}: 409 (idempotency key in use)")
        for status, response in responses.items():
            if status[0] in "45" and PROBLEM_JSON not in response.get("content", {}):
                missing.append(f"{label}: {status} is not {PROBLEM_JSON}")
    assert not missing, "\n".join(missing)


def test_operation_ids_are_unique_and_stable(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert "projects_create_project" in ids and "projects_get_project" in ids


def test_creates_link_to_what_they_created(spec: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in _operations(spec)}
    created = spec["paths"]["/api/v1/projects"]["post"]["responses"]["201"]
    links = created["links"]
    assert set(links) >= {
        "projects_get_project",
        "projects_update_project",
        "projects_delete_project",
        "projects_list_statuses",
    }
    assert links["projects_get_project"]["parameters"] == {"project_id": "$response.body#/id"}
    tenant = spec["paths"]["/platform/v1/tenants"]["post"]["responses"]["201"]["links"]
    assert tenant["platform_get_tenant"]["parameters"] == {"slug": "$response.body#/slug"}
    for _, method, op in _operations(spec):
        for link in op["responses"].get("201", {}).get("links", {}).values():
            assert link["operationId"] in ids, link
        if method == "post" and "201" in op["responses"] and op.get("security"):
            assert op["responses"]["201"].get("links"), op["operationId"]


def test_nested_create_links_by_the_location_pattern() -> None:
    from backend.kit.openapi import _add_links

    def op(op_id: str) -> dict[str, Any]:
        return {"operationId": op_id, "responses": {}}

    body = {"content": {"application/json": {"schema": {"properties": {"id": {}}}}}}
    spec = {
        "paths": {
            "/api/v1/projects/{project_id}/tasks": {
                "post": {"responses": {"201": body}},
                "get": op("list_tasks"),
            },
            "/api/v1/tasks/{task_id}": {"get": op("get_task"), "delete": op("delete_task")},
            "/api/v1/tasks/{task_id}/comments": {"post": op("add_comment")},
            "/api/v1/projects/{project_id}/tasks/{task_id}/x": {"get": op("nested_x")},
        }
    }
    _add_links(spec)
    links = spec["paths"]["/api/v1/projects/{project_id}/tasks"]["post"]["responses"]["201"]
    assert set(links["links"]) == {"get_task", "delete_task", "add_comment", "nested_x"}
    assert links["links"]["nested_x"]["parameters"] == {
        "task_id": "$response.body#/id",
        "project_id": "$request.path.project_id",
    }


def test_idempotency_key_is_documented_on_authenticated_tenant_posts(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        names = {p["name"] for p in op.get("parameters", [])}
        expected = method == "post" and path.startswith("/api/") and bool(op.get("security"))
        assert ("Idempotency-Key" in names) == expected, (method, path)


def test_no_dependency_runs_in_the_thread_pool(app: Any) -> None:
    """FastAPI runs a plain ``def`` dependency in the thread pool: a hop per request that
    costs more than the trivial work dependencies do, so every one is ``async def``. (Routes
    may be ``def`` on purpose: the platform's tenant routes run the blocking tenant service.)"""
    from fastapi.dependencies.models import Dependant

    from tests.routes import api_routes

    def is_async(call: Any) -> bool:
        return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)

    def sync_calls(dependant: Dependant) -> Iterator[str]:
        for sub in dependant.dependencies:
            if sub.call is not None and not is_async(sub.call):
                yield f"{sub.call.__module__}.{sub.call.__qualname__}"
            yield from sync_calls(sub)

    found: set[str] = set()
    for root in ROOTS:
        for route in api_routes(app, prefix=root):
            found.update(sync_calls(route.dependant))
    assert not found, sorted(found)


async def test_every_get_route_refuses_unknown_query_parameters(
    app: Any, client: httpx.AsyncClient, make_tenant: Any
) -> None:
    """A typo in a filter must not silently mean "no filter": 422 on every route."""
    import re
    import uuid

    from tests.routes import api_routes

    tenant = make_tenant("params")
    headers = await login(client, tenant)
    checked = 0
    for root in ROOTS:
        for route in api_routes(app, prefix=root):
            if "GET" not in route.methods:
                continue
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
            resp = await client.get(path, params={"no_such_filter": "1"}, headers=headers)
            assert_problem(resp, 422, "invalid-parameter")
            assert "no_such_filter" in resp.json()["detail"], route.path
            checked += 1
    assert checked >= 20
