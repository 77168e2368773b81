"""Password storage: argon2id at OWASP parameters; legacy hashes upgraded on login; limits."""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from sqlalchemy import text

from backend.identity.passwords import password_helper
from tests.conftest import OWNER_PASSWORD, assert_problem, login_as


def _stored_hash(sync_engine, tenant, email) -> str:
    with sync_engine.connect() as conn:
        return conn.execute(
            text(
                f'SELECT hashed_password FROM "{tenant.record.schema_name}".users WHERE email = :e'
            ),
            {"e": email},
        ).scalar_one()


def _set_hash(sync_engine, tenant, email, hashed) -> None:
    with sync_engine.begin() as conn:
        conn.execute(
            text(
                f'UPDATE "{tenant.record.schema_name}".users '
                "SET hashed_password = :h WHERE email = :e"
            ),
            {"h": hashed, "e": email},
        )


def test_new_hashes_are_argon2id_at_owasp_parameters():
    hashed = password_helper.hash("some-password-123")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_legacy_hashes_are_upgraded_on_login(client, make_tenant, add_user, sync_engine):
    tenant = make_tenant("legacy")
    legacy = {
        "bcrypt": bcrypt.hashpw(OWNER_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
        "weak argon2": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(
            OWNER_PASSWORD
        ),
    }
    for name, hashed in legacy.items():
        _, email = add_user(tenant, "member")
        _set_hash(sync_engine, tenant, email, hashed)
        # A wrong password neither logs in nor touches the stored hash.
        resp = await client.post(
            "/api/v1/auth/login",
            data={"username": email, "password": "not-the-password"},
            headers={"X-Tenant": tenant.slug},
        )
        assert_problem(resp, 401)
        assert _stored_hash(sync_engine, tenant, email) == hashed, name
        await login_as(client, tenant, email)
        upgraded = _stored_hash(sync_engine, tenant, email)
        assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), name
        await login_as(client, tenant, email)  # and the new hash works


async def test_password_length_limits(client, make_tenant):
    tenant = make_tenant("pwlen")
    resp = await client.post(
        "/api/v1/auth/login",
        data={"username": tenant.email, "password": "x" * 1025},
        headers={"X-Tenant": tenant.slug},
    )
    assert_problem(resp, 422)
    for password in ("short", "y" * 129):
        resp = await client.post(
            "/api/v1/invites/accept",
            json={"token": "t", "password": password},
            headers={"X-Tenant": tenant.slug},
        )
        assert_problem(resp, 422)
