"""Invites end to end: the mail through a real worker and SMTP sink, single use, isolation."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import text

from tests.conftest import assert_problem, bearer, login_as

NEW_PASSWORD = "a-new-password-1"
TOKEN_RE = re.compile(r"#token=([A-Za-z0-9_-]{43})")


async def _admin(client, tenant, add_user):
    _, email = add_user(tenant, "admin")
    return bearer(tenant, (await login_as(client, tenant, email))["access_token"])


def _token_from_mail(sink, to) -> str:
    [mail] = sink.wait_for(1, to=to)
    assert mail["X-Tenantflow-Template"] == "invite"
    match = TOKEN_RE.search(mail.get_body(("plain",)).get_content())
    assert match, mail
    return match.group(1)


async def _accept(client, tenant, token, password=NEW_PASSWORD, name="New Person"):
    return await client.post(
        "/api/v1/invites/accept",
        json={"token": token, "password": password, "name": name},
        headers={"X-Tenant": tenant.slug},
    )


async def test_invite_mail_accept_login_and_single_use(client, make_tenant, add_user, worker, sink):
    tenant = make_tenant("inv")
    admin = await _admin(client, tenant, add_user)
    to = f"joiner@{tenant.slug}.example.com"
    resp = await client.post("/api/v1/invites", json={"email": to, "role": "viewer"}, headers=admin)
    assert resp.status_code == 201, resp.text
    invite = resp.json()
    assert invite["email"] == to and invite["role"] == "viewer"
    assert resp.headers["location"] == f"/api/v1/invites/{invite['id']}"
    listed = (await client.get("/api/v1/invites", headers=admin)).json()["items"]
    assert [i["id"] for i in listed] == [invite["id"]]
    token = _token_from_mail(sink, to)
    accepted = await _accept(client, tenant, token)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["role"] == "viewer" and accepted.json()["name"] == "New Person"
    await login_as(client, tenant, to, NEW_PASSWORD)
    assert_problem(await _accept(client, tenant, token), 400, "invalid-invite-token")
    assert (await client.get("/api/v1/invites", headers=admin)).json()["items"] == []
    actions = [
        e["action"] for e in (await client.get("/api/v1/audit", headers=admin)).json()["items"]
    ]
    assert {"invite.sent", "invite.accepted"} <= set(actions)


async def test_fifty_parallel_redemptions_create_one_user(
    client, make_tenant, add_user, worker, sink, sync_engine
):
    tenant = make_tenant("inv50")
    admin = await _admin(client, tenant, add_user)
    to = f"race@{tenant.slug}.example.com"
    await client.post("/api/v1/invites", json={"email": to}, headers=admin)
    token = _token_from_mail(sink, to)
    results = await asyncio.gather(*(_accept(client, tenant, token) for _ in range(50)))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 1, codes
    assert set(codes) <= {201, 400, 409}, codes
    with sync_engine.connect() as conn:
        count = conn.execute(
            text(f'SELECT count(*) FROM "{tenant.record.schema_name}".users WHERE email = :e'),
            {"e": to},
        ).scalar_one()
    assert count == 1


async def test_revoked_foreign_and_expired_tokens_fail(
    client, make_tenant, add_user, worker, sink, sync_redis
):
    a, b = make_tenant("inva"), make_tenant("invb")
    admin = await _admin(client, a, add_user)
    first, second = f"one@{a.slug}.example.com", f"two@{a.slug}.example.com"
    one = (await client.post("/api/v1/invites", json={"email": first}, headers=admin)).json()
    await client.post("/api/v1/invites", json={"email": second}, headers=admin)
    token_one, token_two = _token_from_mail(sink, first), _token_from_mail(sink, second)
    # Another tenant does not know a's tokens, and trying does not spend them.
    assert_problem(await _accept(client, b, token_two), 400, "invalid-invite-token")
    assert (await client.delete(f"/api/v1/invites/{one['id']}", headers=admin)).status_code == 204
    assert_problem(await _accept(client, a, token_one), 400)
    assert_problem(await client.delete(f"/api/v1/invites/{one['id']}", headers=admin), 404)
    for key in sync_redis.scan_iter(f"tf:{{{a.id}}}:onetime:invite:*"):
        if not key.endswith(b":index"):
            sync_redis.pexpire(key, 1)
    await asyncio.sleep(0.05)
    assert_problem(await _accept(client, a, token_two), 400)


async def test_invite_rules_and_validation(client, make_tenant, add_user):
    tenant = make_tenant("invrules")
    admin = await _admin(client, tenant, add_user)
    assert_problem(
        await client.post(
            "/api/v1/invites", json={"email": "x@example.com", "role": "owner"}, headers=admin
        ),
        403,
        "role-too-high",
    )
    assert_problem(
        await client.post("/api/v1/invites", json={"email": tenant.email.upper()}, headers=admin),
        409,
        "user-exists",
    )
    for body in ({"email": "not-an-email"}, {"email": "a@b.co", "role": "root"}, {}):
        assert_problem(await client.post("/api/v1/invites", json=body, headers=admin), 422)
    for body in ({"token": "t", "password": "short"}, {"token": "", "password": "long-enough-pw"}):
        assert_problem(
            await client.post(
                "/api/v1/invites/accept", json=body, headers={"X-Tenant": tenant.slug}
            ),
            422,
        )


async def test_guessing_invite_tokens_is_throttled(client, make_tenant, settings):
    tenant = make_tenant("invguess")
    for _ in range(settings.token_max_failures_per_address):
        assert_problem(await _accept(client, tenant, "guess-" + "x" * 37), 400)
    resp = await _accept(client, tenant, "guess-" + "y" * 37)
    assert_problem(resp, 429)
    assert int(resp.headers["retry-after"]) >= 1


async def test_invite_dies_with_its_inviters_authority(client, make_tenant, add_user, worker, sink):
    tenant = make_tenant("invauth")
    admin_id, admin_email = add_user(tenant, "admin")
    admin = bearer(tenant, (await login_as(client, tenant, admin_email))["access_token"])
    owner = bearer(tenant, (await login_as(client, tenant, tenant.email))["access_token"])
    to = f"late@{tenant.slug}.example.com"
    await client.post("/api/v1/invites", json={"email": to, "role": "admin"}, headers=admin)
    token = _token_from_mail(sink, to)
    await client.patch(f"/api/v1/users/{admin_id}", json={"role": "member"}, headers=owner)
    assert_problem(await _accept(client, tenant, token), 400, "invalid-invite-token")
