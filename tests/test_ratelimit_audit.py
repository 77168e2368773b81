"""The audit trail of rate-limit changes: every plan and override change through the platform
API recorded with who, before and after, newest first, per plan and per tenant. (The CLI's
`limits history` is in test_flags_limits_cli.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import assert_problem
from tests.operators_helpers import bearer, make_api_token, make_operator

pytestmark = pytest.mark.asyncio(loop_scope="session")

NO_OVERRIDES = {
    "requests_per_minute": None,
    "user_requests_per_minute": None,
    "write_requests_per_minute": None,
    "auth_requests_per_minute": None,
    "concurrent_requests": None,
}


async def history(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[Any]:
    resp = await client.get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_plan_changes_are_recorded_with_actor_before_and_after(
    client: httpx.AsyncClient, app: Any, platform_headers: dict[str, str]
) -> None:
    email = await make_operator(app, "audit")
    _, token = await make_api_token(app, email)
    operator = bearer(token)
    path = "/platform/v1/plans/pro"
    plan = (await client.get(path, headers=operator)).json()
    original = {k: v for k, v in plan.items() if k not in ("name", "updated_at")}
    changed = {**original, "requests_per_minute": 4242, "shadow": ["tenant"]}
    resp = await client.put(path, json=changed, headers=operator)
    try:
        assert resp.status_code == 200, resp.text
        again = await client.put(path, json=changed, headers=operator)  # as stored: no entry
        assert again.status_code == 200, again.text
    finally:
        restored = await client.put(path, json=original, headers=platform_headers)
        assert restored.status_code == 200, restored.text

    newest, change = (await history(client, f"{path}/history?limit=2", operator))[:2]
    assert change["kind"] == "plan" and change["name"] == "pro" and change["tenant_id"] is None
    assert change["actor"] == email
    assert change["before"] == original and change["after"] == changed
    assert newest["actor"] == "platform-token"
    assert newest["before"] == changed and newest["after"] == original
    assert newest["id"] > change["id"]
    assert len(await history(client, f"{path}/history?limit=1", operator)) == 1

    assert_problem(
        await client.get("/platform/v1/plans/gold/history", headers=operator),
        404,
        "plan-not-found",
    )
    for bad in ("0", "501", "x"):
        resp = await client.get(f"{path}/history?limit={bad}", headers=operator)
        assert_problem(resp, 422)
    assert_problem(await client.get(f"{path}/history"), 401)


async def test_override_changes_are_recorded_per_tenant(
    client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant, other = make_tenant("aud"), make_tenant("aud")
    path = f"/platform/v1/tenants/{tenant.slug}/limits"
    assert await history(client, f"{path}/history", platform_headers) == []

    async def put(slug: str, body: dict[str, Any]) -> None:
        resp = await client.put(
            f"/platform/v1/tenants/{slug}/limits", json=body, headers=platform_headers
        )
        assert resp.status_code == 200, resp.text

    await put(tenant.slug, {"requests_per_minute": 50})
    await put(other.slug, {"requests_per_minute": 9})
    await put(tenant.slug, {"requests_per_minute": None})  # cleared
    await put(tenant.slug, {})  # nothing to change
    await put(tenant.slug, {"requests_per_minute": None})  # already clear

    cleared, set_ = await history(client, f"{path}/history", platform_headers)
    set_values = {**NO_OVERRIDES, "requests_per_minute": 50}
    assert set_["kind"] == "tenant" and set_["name"] == tenant.slug
    assert set_["tenant_id"] == str(tenant.id) and set_["actor"] == "platform-token"
    assert set_["before"] is None and set_["after"] == set_values
    assert cleared["before"] == set_values and cleared["after"] == NO_OVERRIDES
    assert cleared["id"] > set_["id"]

    others = await history(
        client, f"/platform/v1/tenants/{other.slug}/limits/history", platform_headers
    )
    assert [(e["name"], e["after"]["requests_per_minute"]) for e in others] == [(other.slug, 9)]

    assert_problem(
        await client.get(
            f"/platform/v1/tenants/nope-{uuid.uuid4().hex[:6]}/limits/history",
            headers=platform_headers,
        ),
        404,
        "tenant-not-found",
    )
    assert_problem(await client.get(f"{path}/history?limit=0", headers=platform_headers), 422)
    assert_problem(await client.get(f"{path}/history"), 401)
