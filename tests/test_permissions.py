"""Every tenant route x every role (as a user and as an API key) against the permission table."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from backend.identity.models import ROLES
from backend.identity.permissions import HUMAN_ONLY, PERMISSIONS, declared_permission
from tests.conftest import assert_problem, bearer, login_as
from tests.routes import api_routes


def _declared(dependant) -> list[str | None]:
    found = []
    for dep in dependant.dependencies:
        declared, action = declared_permission(dep.call) if dep.call else (False, None)
        if declared:
            found.append(action)
        found.extend(_declared(dep))
    return found


def tenant_routes(app) -> list[tuple[APIRoute, str | None]]:
    routes = []
    for route in api_routes(app):
        if True:
            actions = set(_declared(route.dependant))
            assert len(actions) == 1, (
                f"{route.path} {route.methods} declares {actions or 'nothing'}"
            )
            routes.append((route, actions.pop()))
    return routes


def socket_routes(app) -> list[tuple[APIWebSocketRoute, str | None]]:
    """Tenant WebSocket routes: they authenticate after the handshake, so the endpoint itself
    declares its action (``declares``) and checks it."""
    found = []
    for route in api_routes(app, kind=APIWebSocketRoute):
        declared, action = declared_permission(route.endpoint)
        assert declared, f"{route.path} declares nothing"
        found.append((route, action))
    return found


def test_every_tenant_route_declares_one_known_permission(app):
    routes = tenant_routes(app)
    sockets = socket_routes(app)
    assert len(routes) >= 15
    assert [r.path for r, _ in sockets] == ["/api/v1/stream"]
    for route, action in [*routes, *sockets]:
        assert action is None or action in PERMISSIONS, (route.path, action)
    used = {action for _, action in [*routes, *sockets]}
    assert set(PERMISSIONS) <= used, f"unused permissions: {set(PERMISSIONS) - used}"


@pytest.fixture(scope="module")
async def callers(client, make_tenant, add_user):
    """Headers per (kind, role): a user of each role and an API key of each role."""
    tenant = make_tenant("perm")
    owner = await login_as(client, tenant, tenant.email)
    found = {("user", "owner"): bearer(tenant, owner["access_token"])}
    for role in ROLES[1:]:
        _, email = add_user(tenant, role)
        found[("user", role)] = bearer(
            tenant, (await login_as(client, tenant, email))["access_token"]
        )
    for role in ROLES[1:]:  # keys are never owners
        resp = await client.post(
            "/api/v1/api-keys",
            json={"name": f"{role} key", "role": role},
            headers=found[("user", "owner")],
        )
        assert resp.status_code == 201, resp.text
        found[("api_key", role)] = {"Authorization": f"Bearer {resp.json()['key']}"}
    return found


async def test_route_role_matrix_matches_table(app, client, callers):
    checked = 0
    for route, action in tenant_routes(app):
        if action is None:
            continue
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
        for method in route.methods:
            for (kind, role), headers in callers.items():
                resp = await client.request(method, path, headers=headers, json={})
                label = f"{method} {route.path} as {kind} {role}"
                if kind == "api_key" and action in HUMAN_ONLY:
                    body = assert_problem(resp, 403, "forbidden")
                elif role in PERMISSIONS[action]:
                    assert resp.status_code not in (401, 403), f"{label}: {resp.text}"
                else:
                    body = assert_problem(resp, 403, "forbidden")
                    assert body["action"] == action, label
                checked += 1
    assert checked >= 100


async def test_protected_routes_refuse_anonymous(app, client, callers):
    for route, action in tenant_routes(app):
        if action is None:
            continue
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
        for method in route.methods:
            resp = await client.request(method, path, headers={"X-Tenant": "perm-x"}, json={})
            assert resp.status_code in (401, 404), (method, path, resp.status_code)
