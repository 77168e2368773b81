"""Forgot/reset password through a real worker and SMTP sink; login lockout and its lifting."""

from __future__ import annotations

import re
import uuid

from tests.conftest import assert_problem, bearer, login_as, wait_until

TOKEN_RE = re.compile(r"#token=([A-Za-z0-9_-]{43})")
NEW_PASSWORD = "brand-new-password-2"


async def _forgot(client, tenant, email):
    return await client.post(
        "/api/v1/auth/forgot-password", json={"email": email}, headers={"X-Tenant": tenant.slug}
    )


async def _reset(client, tenant, token, password=NEW_PASSWORD):
    return await client.post(
        "/api/v1/auth/reset-password",
        json={"token": token, "password": password},
        headers={"X-Tenant": tenant.slug},
    )


async def _login(client, tenant, email, password):
    return await client.post(
        "/api/v1/auth/login",
        data={"username": email, "password": password},
        headers={"X-Tenant": tenant.slug},
    )


def _reset_tokens(sink, to, count=1) -> list[str]:
    mails = sink.wait_for(count, to=to)
    assert len(mails) >= count
    return [TOKEN_RE.search(m.get_body(("plain",)).get_content()).group(1) for m in mails]


async def test_reset_flow_ends_sessions_and_is_single_use(client, make_tenant, worker, sink):
    tenant = make_tenant("rst")
    session = await login_as(client, tenant, tenant.email)
    resp = await _forgot(client, tenant, tenant.email.upper())
    assert resp.status_code == 202
    [token] = _reset_tokens(sink, tenant.email)
    assert (await _reset(client, tenant, token)).status_code == 204
    assert_problem(await _login(client, tenant, tenant.email, tenant.password), 401)
    await login_as(client, tenant, tenant.email, NEW_PASSWORD)
    refreshed = await client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": session["refresh_token"]},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(refreshed, 401)  # every session ended
    assert_problem(
        await _reset(client, tenant, token, "yet-another-pw-3"), 400, "invalid-reset-token"
    )
    owner = bearer(
        tenant, (await login_as(client, tenant, tenant.email, NEW_PASSWORD))["access_token"]
    )
    actions = [
        e["action"] for e in (await client.get("/api/v1/audit", headers=owner)).json()["items"]
    ]
    assert "password.reset" in actions and "password.reset_requested" in actions


async def test_unknown_email_gets_the_same_answer_and_no_mail(client, make_tenant, worker, sink):
    tenant = make_tenant("rstunk")
    unknown = f"ghost@{tenant.slug}.example.com"
    known, missing = (
        await _forgot(client, tenant, tenant.email),
        await _forgot(client, tenant, unknown),
    )
    assert known.status_code == missing.status_code == 202
    assert known.json() == missing.json()
    sink.wait_for(1, to=tenant.email)
    assert wait_until(
        lambda: f"password reset for tenant {tenant.slug}: no active account" in worker.read_text()
    )
    assert sink.wait_for(1, timeout=0.5, to=unknown) == []


async def test_token_dies_when_the_password_changes(client, make_tenant, worker, sink):
    tenant = make_tenant("rstdead")
    await _forgot(client, tenant, tenant.email)
    await _forgot(client, tenant, tenant.email)
    first, second = _reset_tokens(sink, tenant.email, 2)[:2]
    assert (await _reset(client, tenant, first)).status_code == 204
    assert_problem(await _reset(client, tenant, second, "third-password-44"), 400)
    await login_as(client, tenant, tenant.email, NEW_PASSWORD)


async def test_reset_token_of_a_does_not_work_at_b(client, make_tenant, worker, sink):
    a, b = make_tenant("rsta"), make_tenant("rstb")
    await _forgot(client, a, a.email)
    [token] = _reset_tokens(sink, a.email)
    assert_problem(await _reset(client, b, token), 400)
    assert (await _reset(client, a, token)).status_code == 204


async def test_lockout_429_with_backoff_and_reset_lifts_it(
    client, make_tenant, worker, sink, settings
):
    tenant = make_tenant("lock")
    for _ in range(settings.login_max_failures):
        assert_problem(await _login(client, tenant, tenant.email, "wrong-password-x"), 401)
    locked = await _login(client, tenant, tenant.email, tenant.password)  # even the right one
    body = assert_problem(locked, 429, "too-many-login-failures")
    assert int(locked.headers["retry-after"]) == body["retry_after"] >= 1
    # A password reset still works during the lockout, and lifts it.
    await _forgot(client, tenant, tenant.email)
    [token] = _reset_tokens(sink, tenant.email)
    assert (await _reset(client, tenant, token)).status_code == 204
    owner = await login_as(client, tenant, tenant.email, NEW_PASSWORD)
    events = await client.get("/api/v1/audit", headers=bearer(tenant, owner["access_token"]))
    locked = [e for e in events.json()["items"] if e["action"] == "login.locked"]
    assert len(locked) == 1 and locked[0]["details"]["locked_seconds"] >= 1


async def test_lockout_counts_per_address_across_accounts_and_tenants(
    make_tenant, add_user, settings
):
    import httpx

    from backend.main import create_app

    limit = 6
    app = create_app(settings.model_copy(update={"login_max_failures_per_address": limit}))
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    a, b = make_tenant("lockaddr"), make_tenant("lockother")
    _, email = add_user(a, "member")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://x") as c,
    ):
        for i in range(limit):  # one failure per account, spread over two tenants
            tenant = (a, b)[i % 2]
            resp = await _login(c, tenant, f"guess{i}@example.com", "wrong-password-x")
            assert_problem(resp, 401)
        # The address is locked everywhere: at a and at b, even with right passwords.
        assert_problem(await _login(c, a, email, a.password), 429, "too-many-login-failures")
        assert_problem(await _login(c, b, b.email, b.password), 429)
    # Another address is not affected.
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 1)), base_url="http://x"
        ) as other,
        app.router.lifespan_context(app),
    ):
        assert (await _login(other, a, email, a.password)).status_code == 200


async def test_good_login_clears_the_account_count(client, make_tenant, settings):
    tenant = make_tenant("lockclear")
    for _ in range(settings.login_max_failures - 1):
        assert_problem(await _login(client, tenant, tenant.email, "wrong-password-x"), 401)
    await login_as(client, tenant, tenant.email)
    assert_problem(await _login(client, tenant, tenant.email, "wrong-password-x"), 401)
    await login_as(client, tenant, tenant.email)  # not locked: the count started afresh


async def test_forgot_password_is_rate_limited_per_account(client, make_tenant, settings):
    tenant = make_tenant("rstrate")
    for _ in range(settings.forgot_password_max_per_account):
        assert (await _forgot(client, tenant, "nobody@example.com")).status_code == 202
    assert_problem(await _forgot(client, tenant, "nobody@example.com"), 429)
    assert (await _forgot(client, tenant, "somebody@example.com")).status_code == 202
