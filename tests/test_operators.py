"""Platform operators over HTTP: login, access and API tokens, lockout, token separation."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import assert_problem, login
from tests.operators_helpers import (
    OPERATOR_PASSWORD,
    bearer,
    make_api_token,
    make_operator,
    run,
)

LOGIN = "/platform/v1/auth/login"
TENANTS = "/platform/v1/tenants"


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def _access_token(client: httpx.AsyncClient, email: str) -> str:
    resp = await _login(client, email, OPERATOR_PASSWORD)
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]  # type: ignore[no-any-return]


@asynccontextmanager
async def _own_app(settings: Any, address: str, **changes: Any) -> AsyncIterator[Any]:
    """An app with changed settings, and a client calling from its own address."""
    from backend.main import create_app

    app = create_app(settings.model_copy(update=changes))
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://x") as c,
    ):
        yield c


def _address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def test_login_gives_a_short_lived_operator_token(app, client, settings):
    email = await make_operator(app)
    resp = await _login(client, email.upper(), OPERATOR_PASSWORD)  # emails ignore case
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.operator_access_token_lifetime_seconds
    listed = await client.get(TENANTS, headers=bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text
    operator = await run(app, lambda s: s.get_by_email(email))
    assert operator.last_login_at is not None


@pytest.mark.parametrize("case", ["wrong-password", "unknown-email"])
async def test_bad_credentials_are_one_401(app, client, case):
    email = await make_operator(app)
    if case == "unknown-email":
        email = f"nobody-{uuid.uuid4().hex[:8]}@ops.example.com"
    resp = await _login(client, email, "not-the-password")
    body = assert_problem(resp, 401, "invalid-credentials")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "Email or password" in body["detail"]


async def test_unknown_email_pays_the_same_argon2_verify(app, client, monkeypatch):
    from backend.operators import service

    calls: list[str] = []
    real = service.password_helper.verify_and_update

    def spy(password: str, hashed: str) -> tuple[bool, str | None]:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(service.password_helper, "verify_and_update", spy)
    email = await make_operator(app)
    await _login(client, email, "not-the-password")
    await _login(client, f"ghost-{uuid.uuid4().hex[:8]}@ops.example.com", "not-the-password")
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)
    assert calls[0] != calls[1]


@pytest.mark.parametrize(
    "body", [{}, {"email": "not-an-email", "password": "x"}, {"email": "a@b.co"}]
)
async def test_login_input_is_validated(client, body):
    assert_problem(await client.post(LOGIN, json={**body, "extra": 1}), 422, "validation-error")


async def test_any_email_shaped_login_is_a_fair_question(client):
    # A special-use domain (.test) passes the schema's format: email; a login is a lookup, so it
    # gets the same 401 as any unknown email, not a 422 from an address deliverability check.
    resp = await _login(client, "'+!x!v7gn+@zaf0.test", "not-the-password")
    assert_problem(resp, 401, "invalid-credentials")


async def test_unparsable_bodies_are_a_documented_400(app, client):
    paths = app.openapi()["paths"]
    for path, method in ((LOGIN, "post"), (TENANTS, "post"), (f"{TENANTS}/{{slug}}", "patch")):
        assert "400" in paths[path][method]["responses"], (method, path)
    resp = await client.post(
        LOGIN, content=b"\xb9\xc6\xaaI>", headers={"Content-Type": "application/json"}
    )
    assert_problem(resp, 400, "bad-request")


async def test_api_token_works_and_is_touched(app, client, sync_engine):
    email = await make_operator(app)
    token_id, secret = await make_api_token(app, email)
    assert secret.startswith("tfo_")
    resp = await client.get(TENANTS, headers=bearer(secret))
    assert resp.status_code == 200, resp.text
    with sync_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT token_hash, prefix, last_used_at FROM tf_shared.operator_tokens "
                "WHERE id = :id"
            ),
            {"id": token_id},
        ).one()
    assert secret not in row.token_hash and secret.startswith(row.prefix)
    assert row.last_used_at is not None


async def test_revoked_and_expired_api_tokens_are_401(app, client, sync_engine):
    email = await make_operator(app)
    revoked_id, revoked = await make_api_token(app, email)
    expired_id, expired = await make_api_token(app, email, days=30)
    await run(app, lambda s: s.revoke_token(revoked_id))
    with sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE tf_shared.operator_tokens SET expires_at = :t WHERE id = :id"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), "id": expired_id},
        )
    for token in (revoked, expired, "tfo_" + "A" * 43, "tfo_"):
        resp = await client.get(TENANTS, headers=bearer(token))
        assert_problem(resp, 401, "invalid-operator-token")
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_deactivated_operator_is_refused_everywhere(app, client):
    email = await make_operator(app)
    access = await _access_token(client, email)
    _, api_token = await make_api_token(app, email)
    await run(app, lambda s: s.deactivate(email))
    assert_problem(await _login(client, email, OPERATOR_PASSWORD), 401, "invalid-credentials")
    for token in (access, api_token):
        assert_problem(await client.get(TENANTS, headers=bearer(token)), 401)
    tokens = await run(app, lambda s: s.list_tokens(email))
    assert all(t.revoked_at is not None for t, _ in tokens)


async def test_tenant_token_is_refused_at_platform(client, make_tenant):
    headers = await login(client, make_tenant("tok"))
    assert_problem(await client.get(TENANTS, headers=headers), 401, "invalid-operator-token")
    assert_problem(
        await client.get(TENANTS, headers={"Authorization": headers["Authorization"]}), 401
    )


async def test_operator_tokens_are_refused_at_tenant_routes(app, client, make_tenant):
    tenant = make_tenant("optok")
    email = await make_operator(app)
    _, api_token = await make_api_token(app, email)
    for token in (await _access_token(client, email), api_token):
        headers = {"X-Tenant": tenant.slug, **bearer(token)}
        assert_problem(await client.get("/api/v1/projects", headers=headers), 401)
        assert_problem(await client.get("/api/v1/users/me", headers=headers), 401)
        # Without X-Tenant the token names no tenant either.
        assert_problem(await client.get("/api/v1/projects", headers=bearer(token)), 400)


def test_token_kinds_never_verify_as_each_other(settings, make_tenant):
    from backend.identity.tokens import TokenService
    from backend.operators.tokens import OperatorTokenService

    tenant_tokens, operator_tokens = TokenService(settings), OperatorTokenService(settings)
    tenant_token = tenant_tokens.issue(
        user_id=uuid.uuid4(), role="owner", tenant=make_tenant().record
    )
    operator_token = operator_tokens.issue(uuid.uuid4())
    assert operator_tokens.decode(tenant_token) is None
    assert tenant_tokens.decode(operator_token) is None
    assert tenant_tokens.tenant_of(operator_token) is None


async def test_bootstrap_platform_token_still_works(client, platform_headers):
    assert (await client.get(TENANTS, headers=platform_headers)).status_code == 200


async def test_account_lockout_then_recovery(app, settings):
    email = await make_operator(app, "lock")
    # Locks of 1 s, then 2 s: margins of over a second for a loaded machine (a hash can take
    # a few hundred ms there).
    async with _own_app(settings, _address(), login_lockout_seconds=1.0) as c:
        for _ in range(settings.login_max_failures):
            assert_problem(await _login(c, email, "wrong-password"), 401)
        for password in ("wrong-password", OPERATOR_PASSWORD):  # even the right one waits
            resp = await _login(c, email, password)
            body = assert_problem(resp, 429, "too-many-login-failures")
            assert resp.headers["retry-after"] == "1" and body["retry_after"] == 1
        await asyncio.sleep(1.05)
        # Still counted: one more failure locks again, twice as long (2 s).
        assert_problem(await _login(c, email, "wrong-password"), 401)
        await asyncio.sleep(0.3)
        assert_problem(await _login(c, email, OPERATOR_PASSWORD), 429)
        await asyncio.sleep(1.75)
        assert (await _login(c, email, OPERATOR_PASSWORD)).status_code == 200
        # A success forgets the account's failures.
        assert_problem(await _login(c, email, "wrong-password"), 401)
        assert (await _login(c, email, OPERATOR_PASSWORD)).status_code == 200


async def test_address_lockout_spans_accounts(app, settings):
    emails = [await make_operator(app, "addr") for _ in range(3)]
    address = _address()
    async with _own_app(settings, address, login_max_failures_per_address=3) as c:
        for email in emails:
            assert_problem(await _login(c, email, "wrong-password"), 401)
        resp = await _login(c, emails[0], OPERATOR_PASSWORD)
        assert_problem(resp, 429, "too-many-login-failures")
        assert int(resp.headers["retry-after"]) >= 1
    async with _own_app(settings, _address()) as other:  # another address is not locked
        assert (await _login(other, emails[0], OPERATOR_PASSWORD)).status_code == 200


async def test_login_fails_closed_without_redis(app, settings):
    email = await make_operator(app)
    async with _own_app(settings, _address(), redis_url="redis://127.0.0.1:1/0") as c:
        resp = await _login(c, email, OPERATOR_PASSWORD)
        assert_problem(resp, 503, "service-unavailable")
        assert "Redis" in resp.json()["detail"]
