"""Idempotency-Key on tenant POSTs, against real Redis (backend.kit.idempotency)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.kit.idempotency import IdempotencyMiddleware
from tenancy.keys import idempotency_key
from tests.conftest import assert_problem, bearer, login, login_as


def _key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def _record_key(client: httpx.AsyncClient, tenant: Any, headers: dict[str, str], key: str):
    """The Redis key of the caller's result for ``key``."""
    me = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
    return idempotency_key(tenant.id, hashlib.sha256(f"user:{me}".encode()).hexdigest(), key)


async def _project(client: httpx.AsyncClient, headers: dict[str, str], key: str, name: str):
    return await client.post(
        "/api/v1/projects", json={"name": name}, headers={**headers, "Idempotency-Key": key}
    )


async def test_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    key = _key()
    first = await _project(client, headers, key, "Apollo")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await _project(client, headers, key, "Apollo")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    for name in ("location", "etag", "content-type"):
        assert again.headers[name] == first.headers[name]
    listed = await client.get("/api/v1/projects", headers=headers)
    assert [p["name"] for p in listed.json()["items"]] == ["Apollo"]  # created once


async def test_same_key_other_body_is_422_and_runs_nothing(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    key = _key()
    assert (await _project(client, headers, key, "Apollo")).status_code == 201
    assert_problem(await _project(client, headers, key, "Gemini"), 422, "idempotency-key-reused")
    listed = await client.get("/api/v1/projects", headers=headers)
    assert [p["name"] for p in listed.json()["items"]] == ["Apollo"]


async def test_key_is_kept_24_hours_under_the_tenants_hash_tag(
    client: httpx.AsyncClient, make_tenant: Any, sync_redis: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    key = _key()
    assert (await _project(client, headers, key, "Apollo")).status_code == 201
    stored = await _record_key(client, tenant, headers, key)
    assert stored.startswith(f"tf:{{{tenant.id}}}:idem:")
    assert 86400 - 60 < sync_redis.ttl(stored) <= 86400
    record = json.loads(sync_redis.get(stored))
    assert record["state"] == "done" and set(record) == {"state", "owner", "fp", "sealed"}


async def test_a_stored_secret_is_readable_only_with_the_clients_key(
    client: httpx.AsyncClient, make_tenant: Any, sync_redis: Any
) -> None:
    """An API key's creation answers with its secret: the stored result is encrypted with a
    key derived from the Idempotency-Key, which the store does not hold."""
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    key = _key()
    body = {"name": "ci", "role": "member"}
    first = await client.post(
        "/api/v1/api-keys", json=body, headers={**headers, "Idempotency-Key": key}
    )
    assert first.status_code == 201, first.text
    secret = first.json()["key"]
    stored = sync_redis.get(await _record_key(client, tenant, headers, key))
    assert stored is not None
    for form in (secret, secret.encode().hex(), base64.b64encode(secret.encode()).decode()):
        assert form.encode() not in stored
    assert base64.b64encode(first.content)[:40] not in stored
    replay = await client.post(
        "/api/v1/api-keys", json=body, headers={**headers, "Idempotency-Key": key}
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["key"] == secret


async def test_a_result_stored_in_clear_by_an_earlier_build_still_replays(
    client: httpx.AsyncClient, make_tenant: Any, sync_redis: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    key = _key()
    first = await _project(client, headers, key, "Apollo")
    stored = await _record_key(client, tenant, headers, key)
    record = json.loads(sync_redis.get(stored))
    clear = {
        "state": "done",
        "owner": "",
        "fp": record["fp"],
        "status": 201,
        "headers": {"content-type": "application/json"},
        "body": base64.b64encode(first.content).decode(),
    }
    sync_redis.set(stored, json.dumps(clear), ex=60)
    again = await _project(client, headers, key, "Apollo")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


async def test_other_tenant_and_other_caller_run_fresh(
    client: httpx.AsyncClient, make_tenant: Any, add_user: Any
) -> None:
    a, b = make_tenant("idem"), make_tenant("idem")
    key = _key()
    first = await _project(client, await login(client, a), key, "Apollo")
    at_b = await _project(client, await login(client, b), key, "Apollo")
    assert at_b.status_code == 201 and "idempotent-replayed" not in at_b.headers
    assert at_b.json()["id"] != first.json()["id"]
    # Another caller of tenant A with the same key and body: its own request, not a replay.
    _, email = add_user(a, "admin")
    other = bearer(a, (await login_as(client, a, email))["access_token"])
    mine = await _project(client, other, key, "Apollo")
    assert mine.status_code == 201 and "idempotent-replayed" not in mine.headers
    assert mine.json()["id"] != first.json()["id"]


async def test_key_without_header_or_on_auth_routes_changes_nothing(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    for _ in range(2):
        resp = await client.post("/api/v1/projects", json={"name": "Twin"}, headers=headers)
        assert resp.status_code == 201
    # Login issues credentials: a replay would hand out the same tokens twice, so the key is
    # not honoured there (each call is a fresh login with fresh tokens).
    form = {"username": tenant.email, "password": tenant.password}
    key = {"X-Tenant": tenant.slug, "Idempotency-Key": _key()}
    one = await client.post("/api/v1/auth/login", data=form, headers=key)
    two = await client.post("/api/v1/auth/login", data=form, headers=key)
    assert one.status_code == two.status_code == 200
    assert one.json()["refresh_token"] != two.json()["refresh_token"]
    assert "idempotent-replayed" not in two.headers


@pytest.mark.parametrize("bad", [b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there"])
async def test_malformed_key_is_a_problem(
    client: httpx.AsyncClient, make_tenant: Any, bad: bytes
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    resp = await client.post(
        "/api/v1/projects",
        json={"name": "Apollo"},
        headers=[*headers.items(), ("Idempotency-Key", bad)],
    )
    assert_problem(resp, 422, "invalid-idempotency-key")


# The behaviours below need a handler that blocks or fails on demand: the middleware on a
# small app of its own, with the real Redis and a tenant in scope as the tenant middleware
# would leave it.


class _Tenant:
    def __init__(self) -> None:
        self.id = uuid.uuid4()


def _app(redis: Any, tenant: _Tenant, gate: asyncio.Event, calls: list[str]) -> Any:
    async def work(request: Request) -> Response:
        calls.append((await request.body()).decode())
        if request.query_params.get("wait"):
            await gate.wait()
        if request.query_params.get("fail"):
            return JSONResponse({"error": "boom"}, status_code=503)
        return JSONResponse({"n": len(calls)}, status_code=201, headers={"Location": "/x/1"})

    inner = Starlette(routes=[Route("/api/v1/work", work, methods=["POST"])])
    idem = IdempotencyMiddleware(
        inner, redis=lambda: redis, ttl_seconds=86400, lock_seconds=30, max_body_bytes=1024
    )

    async def with_tenant(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {})["tenant"] = tenant
        await idem(scope, receive, send)

    return with_tenant


@pytest.fixture
async def harness(app: Any) -> Any:
    gate, calls = asyncio.Event(), []
    asgi = _app(app.state.resources.redis, _Tenant(), gate, calls)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="http://h"
    ) as http:
        yield http, gate, calls


AUTH = {"Authorization": "Bearer caller-one"}


async def test_concurrent_same_key_is_409_while_the_first_runs(harness: Any) -> None:
    http, gate, calls = harness
    headers = {**AUTH, "Idempotency-Key": _key()}
    first = asyncio.create_task(http.post("/api/v1/work?wait=1", content=b"a", headers=headers))
    while not calls:
        await asyncio.sleep(0.01)
    second = await http.post("/api/v1/work?wait=1", content=b"a", headers=headers)
    assert_problem(second, 409, "idempotency-key-in-use")
    gate.set()
    assert (await first).status_code == 201
    third = await http.post("/api/v1/work?wait=1", content=b"a", headers=headers)
    assert third.headers["idempotent-replayed"] == "true"
    assert third.headers["location"] == "/x/1"
    assert calls == ["a"]


async def test_server_errors_are_not_stored(harness: Any) -> None:
    http, _, calls = harness
    headers = {**AUTH, "Idempotency-Key": _key()}
    assert (
        await http.post("/api/v1/work?fail=1", content=b"a", headers=headers)
    ).status_code == 503
    retry = await http.post("/api/v1/work?fail=1", content=b"a", headers=headers)
    assert retry.status_code == 503 and "idempotent-replayed" not in retry.headers
    assert calls == ["a", "a"]  # the key was released: the retry ran


async def test_redis_away_fails_closed_only_with_the_header() -> None:
    from redis.asyncio import Redis

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    calls: list[str] = []
    asgi = _app(dead, _Tenant(), asyncio.Event(), calls)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://h") as h:
        refused = await h.post(
            "/api/v1/work", content=b"a", headers={**AUTH, "Idempotency-Key": "k"}
        )
        assert_problem(refused, 503, "service-unavailable")
        assert (await h.post("/api/v1/work", content=b"a", headers=AUTH)).status_code == 201
    assert calls == ["a"]
    await dead.aclose()


async def test_a_retry_after_a_new_login_replays_and_a_forged_token_is_401(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    """The key belongs to the principal, not to one access token: the retry of a client that
    logged in again (or refreshed) replays. A token that does not verify gets its 401 and
    leaves nothing behind."""
    tenant = make_tenant("idem")
    key = _key()
    first = await _project(client, await login(client, tenant), key, "Apollo")
    assert first.status_code == 201
    again = await _project(client, await login(client, tenant), key, "Apollo")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    headers = await login(client, tenant)
    head, payload, signature = headers["Authorization"].removeprefix("Bearer ").split(".")
    forged = {"Authorization": f"Bearer {head}.{payload}.{signature[::-1]}"}
    other_key = _key()
    for _ in range(2):
        refused = await _project(client, {**headers, **forged}, other_key, "Apollo")
        assert_problem(refused, 401, "invalid-token")
    assert (await _project(client, headers, other_key, "Apollo")).status_code == 201


async def test_an_api_key_keeps_its_keys_apart_from_its_creators(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = make_tenant("idem")
    headers = await login(client, tenant)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "admin"}, headers=headers
    )
    assert created.status_code == 201, created.text
    machine = bearer(tenant, created.json()["key"])
    key = _key()
    by_user = await _project(client, headers, key, "Apollo")
    by_key = await _project(client, machine, key, "Apollo")
    assert by_key.status_code == 201 and "idempotent-replayed" not in by_key.headers
    assert by_key.json()["id"] != by_user.json()["id"]
    replay = await _project(client, machine, key, "Apollo")
    assert replay.headers["idempotent-replayed"] == "true"
