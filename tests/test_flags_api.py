"""Feature flags through the whole app: operators' definitions (Unleash JSON) with audit
history, evaluation for the caller, tenant overrides, and tenant isolation."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import assert_problem, login, login_as

pytestmark = pytest.mark.asyncio(loop_scope="session")


def flag_name(prefix: str = "f") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def put_flag(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.put(f"/platform/v1/flags/{body['name']}", json=body, headers=headers)


async def settled(app: Any, version_before: int) -> None:
    """Wait until this process's copy has taken a change (the store refreshes in a thread)."""
    store = app.state.resources.flags
    deadline = time.monotonic() + 5
    while store.version <= version_before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert store.version > version_before


async def flags_of(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.get("/api/v1/flags", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["flags"]  # type: ignore[no-any-return]


async def test_operators_create_read_replace_and_delete_flags_with_history(
    client: httpx.AsyncClient, platform_headers: dict[str, str]
) -> None:
    name = flag_name()
    body = {"name": name, "enabled": True, "strategies": [{"name": "default"}]}
    created = await put_flag(client, platform_headers, body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/platform/v1/flags/{name}"
    assert created.json()["tenantOverridable"] is False
    replaced = await put_flag(client, platform_headers, {**body, "enabled": False})
    assert replaced.status_code == 200 and replaced.json()["enabled"] is False
    got = await client.get(f"/platform/v1/flags/{name}", headers=platform_headers)
    assert got.json()["enabled"] is False and got.json()["updatedBy"] == "platform-token"
    listed = await client.get("/platform/v1/flags", headers=platform_headers)
    assert name in [f["name"] for f in listed.json()]
    deleted = await client.delete(f"/platform/v1/flags/{name}", headers=platform_headers)
    assert deleted.status_code == 204
    assert_problem(
        await client.get(f"/platform/v1/flags/{name}", headers=platform_headers),
        404,
        "flag-not-found",
    )
    history = await client.get(f"/platform/v1/flags/{name}/history", headers=platform_headers)
    entries = history.json()
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    assert entries[2]["before"] is None and entries[2]["after"]["definition"]["enabled"] is True
    assert entries[1]["before"]["definition"]["enabled"] is True
    assert entries[1]["after"]["definition"]["enabled"] is False
    assert entries[0]["after"] is None and all(e["actor"] == "platform-token" for e in entries)
    assert entries[0]["version"] > entries[1]["version"] > entries[2]["version"]


async def test_a_read_flag_put_back_stores_only_its_definition(
    client: httpx.AsyncClient, platform_headers: dict[str, str]
) -> None:
    """GET, edit, PUT: the fields the API adds (tenantOverridable, updatedAt, updatedBy) are
    not stored inside the definition, and the definition reads back the same."""
    name = flag_name()
    body = {"name": name, "enabled": True, "tenantOverridable": True}
    assert (await put_flag(client, platform_headers, body)).status_code == 201
    got = (await client.get(f"/platform/v1/flags/{name}", headers=platform_headers)).json()
    replaced = await put_flag(client, platform_headers, {**got, "enabled": False})
    assert replaced.status_code == 200, replaced.text
    history = await client.get(f"/platform/v1/flags/{name}/history", headers=platform_headers)
    stored = history.json()[0]["after"]["definition"]
    assert stored["enabled"] is False
    assert not {"tenantOverridable", "updatedAt", "updatedBy"} & set(stored)
    again = (await client.get(f"/platform/v1/flags/{name}", headers=platform_headers)).json()
    assert again["tenantOverridable"] is True
    assert {k: v for k, v in again.items() if k not in ("updatedAt", "enabled")} == {
        k: v for k, v in got.items() if k not in ("updatedAt", "enabled")
    }
    await client.delete(f"/platform/v1/flags/{name}", headers=platform_headers)


async def test_bad_definitions_are_refused_with_a_clear_422(
    client: httpx.AsyncClient, platform_headers: dict[str, str]
) -> None:
    name = flag_name()

    def with_constraint(**constraint: Any) -> dict[str, Any]:
        strategy = {"name": "default", "constraints": [constraint]}
        return {"name": name, "enabled": True, "strategies": [strategy]}

    bad = [
        with_constraint(contextName="userId", operator="LIKE", values=["a"]),
        with_constraint(contextName="userId", operator="REGEX", value="(unclosed"),
        with_constraint(contextName="plan", operator="NUM_GT", value="many"),
        {"name": name, "enabled": True, "strategies": [{"name": "mystery"}]},
        {"name": name, "enabled": True, "variants": [{"name": "a", "weight": 2000}]},
        {"name": "another-name", "enabled": True},
        {"name": name, "enabled": "yes"},
        {"name": name, "enabled": True, "tenantOverridable": "yes"},
        {
            "name": name,
            "enabled": True,
            "strategies": [{"name": "default", "segments": [987654]}],
        },
    ]
    for body in bad:
        resp = await client.put(f"/platform/v1/flags/{name}", json=body, headers=platform_headers)
        assert_problem(resp, 422)
    resp = await client.put(
        f"/platform/v1/flags/{name}",
        content=b"{",
        headers={**platform_headers, "Content-Type": "application/json"},
    )
    assert resp.status_code in (400, 422)
    assert_problem(await client.get("/platform/v1/flags"), 401)
    assert_problem(await client.get(f"/platform/v1/flags/{name}", headers=platform_headers), 404)


async def test_flags_are_evaluated_for_the_caller_and_tenant(
    app: Any,
    client: httpx.AsyncClient,
    make_tenant: Any,
    add_user: Any,
    platform_headers: dict[str, str],
) -> None:
    first, second = make_tenant("fl"), make_tenant("fl")
    first_headers, second_headers = await login(client, first), await login(client, second)
    _, email = add_user(first, "member")
    member_token = (await login_as(client, first, email))["access_token"]
    member = {"X-Tenant": first.slug, "Authorization": f"Bearer {member_token}"}
    owner_id = (await client.get("/api/v1/users/me", headers=first_headers)).json()["id"]
    for_owner, for_first, with_payload = flag_name("owner"), flag_name("tenant"), flag_name("v")
    before = app.state.resources.flags.version
    for body in (
        {
            "name": for_owner,
            "enabled": True,
            "strategies": [{"name": "userWithId", "parameters": {"userIds": owner_id}}],
        },
        {
            "name": for_first,
            "enabled": True,
            "strategies": [
                {
                    "name": "default",
                    "constraints": [
                        {"contextName": "tenantId", "operator": "IN", "values": [str(first.id)]}
                    ],
                }
            ],
        },
        {
            "name": with_payload,
            "enabled": True,
            "strategies": [{"name": "default"}],
            "variants": [
                {
                    "name": "blue",
                    "weight": 1000,
                    "stickiness": "tenantId",
                    "payload": {"type": "string", "value": "#00f"},
                }
            ],
        },
    ):
        assert (await put_flag(client, platform_headers, body)).status_code == 201
    await settled(app, before)

    owner_view = await flags_of(client, first_headers)
    assert owner_view[for_owner]["enabled"] is True
    assert owner_view[for_first]["enabled"] is True
    assert owner_view[with_payload] == {
        "enabled": True,
        "variant": {
            "name": "blue",
            "enabled": True,
            "payload": {"type": "string", "value": "#00f"},
        },
    }
    member_view = await flags_of(client, member)
    assert member_view[for_owner]["enabled"] is False  # another user of the same tenant
    assert member_view[for_first]["enabled"] is True
    other_view = await flags_of(client, second_headers)
    assert other_view[for_first]["enabled"] is False  # tenant B is not tenant A
    assert other_view[for_owner] == {
        "enabled": False,
        "variant": {"name": "disabled", "enabled": False, "payload": None},
    }
    assert_problem(await client.get("/api/v1/flags", headers={"X-Tenant": first.slug}), 401)


async def test_tenant_admins_override_only_overridable_flags_for_their_tenant(
    app: Any,
    client: httpx.AsyncClient,
    make_tenant: Any,
    add_user: Any,
    platform_headers: dict[str, str],
    sync_engine: Any,
) -> None:
    first, second = make_tenant("fo"), make_tenant("fo")
    first_headers, second_headers = await login(client, first), await login(client, second)
    _, email = add_user(first, "member")
    member_token = (await login_as(client, first, email))["access_token"]
    member = {"X-Tenant": first.slug, "Authorization": f"Bearer {member_token}"}
    open_flag, locked_flag = flag_name("open"), flag_name("locked")
    before = app.state.resources.flags.version
    on = {"enabled": True, "strategies": [{"name": "default"}]}
    await put_flag(client, platform_headers, {"name": open_flag, **on, "tenantOverridable": True})
    await put_flag(client, platform_headers, {"name": locked_flag, **on})
    await settled(app, before)

    path = f"/api/v1/flags/{open_flag}/override"
    before = app.state.resources.flags.version
    resp = await client.put(path, json={"enabled": False}, headers=first_headers)
    assert resp.status_code == 200 and resp.json() == {"name": open_flag, "enabled": False}
    await settled(app, before)
    assert (await flags_of(client, first_headers))[open_flag]["enabled"] is False
    assert (await flags_of(client, member))[open_flag]["enabled"] is False
    assert (await flags_of(client, second_headers))[open_flag]["enabled"] is True

    assert_problem(await client.put(path, json={"enabled": True}, headers=member), 403)
    assert_problem(
        await client.put(
            f"/api/v1/flags/{locked_flag}/override", json={"enabled": False}, headers=first_headers
        ),
        409,
        "flag-not-overridable",
    )
    assert_problem(
        await client.put(
            f"/api/v1/flags/{flag_name()}/override", json={"enabled": False}, headers=first_headers
        ),
        404,
        "flag-not-found",
    )
    assert_problem(await client.put(path, json={"enabled": "no"}, headers=first_headers), 422)

    history = await client.get(f"/platform/v1/flags/{open_flag}/history", headers=platform_headers)
    override = history.json()[0]
    assert override["kind"] == "override" and override["tenant_id"] == str(first.id)
    assert override["after"] == {"enabled": False} and override["actor"].startswith("user:")

    before = app.state.resources.flags.version
    assert (await client.delete(path, headers=first_headers)).status_code == 204
    await settled(app, before)
    assert (await flags_of(client, first_headers))[open_flag]["enabled"] is True

    # The operator takes the right back: the tenant's override stops counting.
    await client.put(path, json={"enabled": False}, headers=first_headers)
    before = app.state.resources.flags.version
    await put_flag(client, platform_headers, {"name": open_flag, **on})
    await settled(app, before)
    assert (await flags_of(client, first_headers))[open_flag]["enabled"] is True


async def test_segments_are_shared_constraints_and_cannot_vanish_under_a_flag(
    app: Any, client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    tenant = make_tenant("fs")
    headers = await login(client, tenant)
    segment_id = int(time.time() * 1000) % 2_000_000_000
    segment = {
        "id": segment_id,
        "name": "this tenant",
        "constraints": [{"contextName": "tenantId", "operator": "IN", "values": [str(tenant.id)]}],
    }
    resp = await client.put(
        f"/platform/v1/segments/{segment_id}", json=segment, headers=platform_headers
    )
    assert resp.status_code == 201, resp.text
    name = flag_name("seg")
    before = app.state.resources.flags.version
    body = {
        "name": name,
        "enabled": True,
        "strategies": [{"name": "default", "segments": [segment_id]}],
    }
    assert (await put_flag(client, platform_headers, body)).status_code == 201
    await settled(app, before)
    assert (await flags_of(client, headers))[name]["enabled"] is True
    assert_problem(
        await client.delete(f"/platform/v1/segments/{segment_id}", headers=platform_headers),
        409,
        "segment-in-use",
    )
    before = app.state.resources.flags.version
    segment["constraints"][0]["values"] = [str(uuid.uuid4())]
    resp = await client.put(
        f"/platform/v1/segments/{segment_id}", json=segment, headers=platform_headers
    )
    assert resp.status_code == 200
    await settled(app, before)
    assert (await flags_of(client, headers))[name]["enabled"] is False
    await client.delete(f"/platform/v1/flags/{name}", headers=platform_headers)
    deleted = await client.delete(f"/platform/v1/segments/{segment_id}", headers=platform_headers)
    assert deleted.status_code == 204
    history = await client.get(
        f"/platform/v1/segments/{segment_id}/history", headers=platform_headers
    )
    assert [e["action"] for e in history.json()] == ["delete", "update", "create"]


async def test_the_openfeature_client_answers_from_the_same_copy(
    app: Any, client: httpx.AsyncClient, make_tenant: Any, platform_headers: dict[str, str]
) -> None:
    """The app installs the provider: OpenFeature's API sees the flags and tenant overrides."""
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    first, second = make_tenant("of"), make_tenant("of")
    first_headers = await login(client, first)
    name = flag_name("of")
    before = app.state.resources.flags.version
    body = {"name": name, "enabled": True, "strategies": [{"name": "default"}]}
    await put_flag(client, platform_headers, {**body, "tenantOverridable": True})
    await settled(app, before)
    before = app.state.resources.flags.version
    resp = await client.put(
        f"/api/v1/flags/{name}/override", json={"enabled": False}, headers=first_headers
    )
    assert resp.status_code == 200
    await settled(app, before)
    # Every app installs the provider at start-up; the suite starts many apps in one process,
    # so this test puts the session app's copy back before asking.
    from backend.flags.openfeature import install

    assert api.get_provider_metadata().name == "tenantflow"
    install(app.state.resources.flags)
    of = api.get_client()

    def for_tenant(tenant: Any) -> EvaluationContext:
        return EvaluationContext("user-1", {"tenantId": str(tenant.id)})

    assert of.get_boolean_value(name, True, for_tenant(first)) is False
    assert of.get_boolean_value(name, False, for_tenant(second)) is True
    details = of.get_boolean_details(f"{name}.missing", True, for_tenant(second))
    assert details.value is True and details.error_code is not None
