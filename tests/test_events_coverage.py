"""Every tenant write route records its domain events, or says why it records none.

``WRITES`` is the one table: each write operation of the tenant API (POST, PUT, PATCH, DELETE
under /api/v1) with the event types a call may record, or the reason it records none. A new
write route that is not in the table fails ``test_every_write_route_is_accounted_for``: whoever
adds it decides which events it records. ``test_each_write_records_its_events`` then calls every
route through the API (a real tenant, PostgreSQL, Redis, a worker and an SMTP sink for the
invite) and checks, call by call, that the outbox gained events, only of the route's types, none
carrying a secret; and that every event type of the table was recorded by some call.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from backend.events.types import TYPES
from tests.conftest import login, login_as
from tests.task_helpers import new_task

NO_EVENT = str  # a reason

WRITES: dict[tuple[str, str], frozenset[str] | NO_EVENT] = {
    ("POST", "/api/v1/projects"): frozenset({"ProjectCreated"}),
    ("PATCH", "/api/v1/projects/{project_id}"): frozenset({"ProjectUpdated", "ProjectArchived"}),
    # ProjectDeleted stands for the project's tasks too (they go with it).
    ("DELETE", "/api/v1/projects/{project_id}"): frozenset({"ProjectDeleted"}),
    ("POST", "/api/v1/projects/{project_id}/tasks"): frozenset({"TaskCreated"}),
    ("PATCH", "/api/v1/tasks/{task_id}"): frozenset(
        {"TaskUpdated", "TaskStatusChanged", "TaskAssigned"}
    ),
    ("POST", "/api/v1/tasks/bulk"): frozenset({"TaskUpdated", "TaskStatusChanged", "TaskAssigned"}),
    ("DELETE", "/api/v1/tasks/{task_id}"): frozenset({"TaskDeleted"}),
    ("POST", "/api/v1/tasks/{task_id}/comments"): frozenset({"CommentAdded"}),
    ("PATCH", "/api/v1/comments/{comment_id}"): frozenset({"CommentEdited"}),
    ("DELETE", "/api/v1/comments/{comment_id}"): frozenset({"CommentDeleted"}),
    ("PUT", "/api/v1/tasks/{task_id}/watchers/{user_id}"): frozenset({"WatcherAdded"}),
    ("DELETE", "/api/v1/tasks/{task_id}/watchers/{user_id}"): frozenset({"WatcherRemoved"}),
    ("POST", "/api/v1/labels"): frozenset({"LabelCreated"}),
    ("PATCH", "/api/v1/labels/{label_id}"): frozenset({"LabelUpdated"}),
    ("DELETE", "/api/v1/labels/{label_id}"): frozenset({"LabelDeleted"}),
    ("POST", "/api/v1/invites"): frozenset({"MemberInvited"}),
    ("DELETE", "/api/v1/invites/{invite_id}"): frozenset({"InviteRevoked"}),
    ("POST", "/api/v1/invites/accept"): frozenset({"MemberJoined"}),
    ("PATCH", "/api/v1/users/{user_id}"): frozenset({"MemberUpdated"}),
    ("DELETE", "/api/v1/users/{user_id}"): frozenset({"MemberDeactivated"}),
    ("POST", "/api/v1/api-keys"): frozenset({"ApiKeyCreated"}),
    ("DELETE", "/api/v1/api-keys/{key_id}"): frozenset({"ApiKeyRevoked"}),
    # Sessions and credentials: security events, recorded in the audit log (admins only, GET
    # /api/v1/audit), never in the event log that every member and the live feed read.
    ("POST", "/api/v1/auth/login"): "a session starts: audit log (login.succeeded/failed)",
    ("POST", "/api/v1/auth/refresh"): "a session's token rotates: nothing anyone else sees",
    ("POST", "/api/v1/auth/logout"): "a session ends: nothing anyone else sees",
    ("POST", "/api/v1/auth/forgot-password"): "a single-use token in Redis and a mail; no row",
    ("POST", "/api/v1/auth/reset-password"): "a password changes: audit log (password.reset)",
    # A platform flag's per-tenant switch lives beside the flag in the shared schema, with its
    # audit history (GET /platform/v1/flags/{name}/history).
    ("PUT", "/api/v1/flags/{name}/override"): "a flag's tenant switch: flag audit history",
    ("DELETE", "/api/v1/flags/{name}/override"): "a flag's tenant switch: flag audit history",
}

SECRET = re.compile(r"tf[a-z]?_[A-Za-z0-9_-]{20,}")  # API keys, refresh tokens, operator tokens
INVITE_TOKEN = re.compile(r"#token=([A-Za-z0-9_-]{43})")


def test_every_write_route_is_accounted_for(settings: Any) -> None:
    from backend.main import create_app

    writes = {
        (method.upper(), path)
        for path, methods in create_app(settings).openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in methods
        if method in ("post", "put", "patch", "delete")
    }
    assert writes - WRITES.keys() == set(), "write routes without an entry in WRITES"
    assert WRITES.keys() - writes == set(), "entries in WRITES without a route"
    named = {t for v in WRITES.values() if not isinstance(v, str) for t in v}
    assert named - TYPES.keys() == set(), "unknown event types in WRITES"
    assert TYPES.keys() - named == set(), "event types no route records"


class Outbox:
    def __init__(self, sync_engine: Any, schema: str) -> None:
        self.engine, self.schema, self.seen = sync_engine, schema, 0

    def new(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    text(
                        f'SELECT seq, type, payload FROM "{self.schema}".outbox '
                        "WHERE seq > :seen ORDER BY seq"
                    ),
                    {"seen": self.seen},
                ).mappings()
            ]
        if rows:
            self.seen = rows[-1]["seq"]
        return rows


async def test_each_write_records_its_events(
    client, make_tenant, add_user, sync_engine, sync_redis, worker, sink
) -> None:
    tenant = make_tenant("ecov")
    owner = await login(client, tenant)
    member_id, _ = add_user(tenant, "member")
    outbox = Outbox(sync_engine, tenant.record.schema_name)
    recorded: set[str] = set()
    last: list[dict[str, Any]] = []  # the events of the last call

    async def call(route: tuple[str, str], url: str, status: int, **kwargs: Any) -> Any:
        outbox.new()  # whatever came before
        headers = kwargs.pop("headers", owner)
        resp = await client.request(route[0], url, headers=headers, **kwargs)
        assert resp.status_code == status, f"{route}: {resp.status_code} {resp.text}"
        events = outbox.new()
        allowed = WRITES[route]
        assert not isinstance(allowed, str)
        types = {e["type"] for e in events}
        assert types and types <= allowed, f"{route} recorded {types}, expected some of {allowed}"
        for event in events:
            assert not SECRET.search(str(event["payload"])), event
        recorded.update(types)
        last.clear()
        last.extend(events)
        return resp.json() if resp.content else None

    project = await call(("POST", "/api/v1/projects"), "/api/v1/projects", 201, json={"name": "C"})
    statuses = await client.get(f"/api/v1/projects/{project['id']}/statuses", headers=owner)
    done = next(s["id"] for s in statuses.json() if s["category"] == "done")
    p_url = f"/api/v1/projects/{project['id']}"
    p_route = ("PATCH", "/api/v1/projects/{project_id}")
    await call(p_route, p_url, 200, json={"name": "Coverage"})
    t_create = ("POST", "/api/v1/projects/{project_id}/tasks")
    task = await call(t_create, f"{p_url}/tasks", 201, json={"title": "one"})
    other = await call(t_create, f"{p_url}/tasks", 201, json={"title": "two"})
    t_url = f"/api/v1/tasks/{task['id']}"
    t_patch = ("PATCH", "/api/v1/tasks/{task_id}")
    await call(t_patch, t_url, 200, json={"title": "one!"})
    await call(t_patch, t_url, 200, json={"status_id": done})
    await call(t_patch, t_url, 200, json={"assignee_id": str(member_id)})
    bulk = ("POST", "/api/v1/tasks/bulk")
    ids = [task["id"], other["id"]]
    await call(bulk, "/api/v1/tasks/bulk", 200, json={"task_ids": ids, "set": {"status_id": done}})
    label = await call(("POST", "/api/v1/labels"), "/api/v1/labels", 201, json={"name": "red"})
    await call(
        bulk,
        "/api/v1/tasks/bulk",
        200,
        json={"task_ids": ids, "set": {"labels": {"add": [label["id"]]}}},
    )
    l_url = f"/api/v1/labels/{label['id']}"
    await call(("PATCH", "/api/v1/labels/{label_id}"), l_url, 200, json={"name": "blue"})
    await call(("DELETE", "/api/v1/labels/{label_id}"), l_url, 204)
    comment = await call(
        ("POST", "/api/v1/tasks/{task_id}/comments"), f"{t_url}/comments", 201, json={"body": "hi"}
    )
    c_url = f"/api/v1/comments/{comment['id']}"
    await call(("PATCH", "/api/v1/comments/{comment_id}"), c_url, 200, json={"body": "hello"})
    await call(("DELETE", "/api/v1/comments/{comment_id}"), c_url, 204)
    w_url = f"{t_url}/watchers/{member_id}"
    await call(("PUT", "/api/v1/tasks/{task_id}/watchers/{user_id}"), w_url, 204)
    await call(("DELETE", "/api/v1/tasks/{task_id}/watchers/{user_id}"), w_url, 204)
    await call(("DELETE", "/api/v1/tasks/{task_id}"), f"/api/v1/tasks/{other['id']}", 204)
    # A task's subtasks go with it, and each deletion is an event of its own.
    parent = await new_task(client, owner, project["id"])
    subtask = await new_task(client, owner, project["id"], parent_id=parent["id"])
    await call(("DELETE", "/api/v1/tasks/{task_id}"), f"/api/v1/tasks/{parent['id']}", 204)
    gone = {e["payload"]["task_id"] for e in last}
    assert gone == {parent["id"], subtask["id"]}, last
    await call(p_route, p_url, 200, json={"archived": True})
    await call(("DELETE", "/api/v1/projects/{project_id}"), p_url, 204)

    keys = ("POST", "/api/v1/api-keys")
    key = await call(keys, "/api/v1/api-keys", 201, json={"name": "ci", "role": "member"})
    await call(("DELETE", "/api/v1/api-keys/{key_id}"), f"/api/v1/api-keys/{key['id']}", 204)
    u_url = f"/api/v1/users/{member_id}"
    await call(("PATCH", "/api/v1/users/{user_id}"), u_url, 200, json={"role": "viewer"})
    await call(("DELETE", "/api/v1/users/{user_id}"), u_url, 204)
    invites = ("POST", "/api/v1/invites")
    revoked = await call(
        invites, "/api/v1/invites", 201, json={"email": "x@ecov.example.com", "role": "member"}
    )
    await call(("DELETE", "/api/v1/invites/{invite_id}"), f"/api/v1/invites/{revoked['id']}", 204)
    joiner = f"joiner@{tenant.slug}.example.com"
    await call(invites, "/api/v1/invites", 201, json={"email": joiner, "role": "member"})
    [mail] = sink.wait_for(1, to=joiner)
    match = INVITE_TOKEN.search(mail.get_body(("plain",)).get_content())
    assert match, mail
    accepted = {"token": match.group(1), "password": "a-new-password-1", "name": "Joiner"}
    tenant_only = {"X-Tenant": tenant.slug}
    await call(
        ("POST", "/api/v1/invites/accept"),
        "/api/v1/invites/accept",
        201,
        json=accepted,
        headers=tenant_only,
    )

    # The routes that record nothing record nothing.
    outbox.new()
    tokens = await login_as(client, tenant, joiner, "a-new-password-1")
    refresh = {"refresh_token": tokens["refresh_token"]}
    rotated = await client.post("/api/v1/auth/refresh", json=refresh, headers=tenant_only)
    assert rotated.status_code == 200, rotated.text
    refresh = {"refresh_token": rotated.json()["refresh_token"]}
    ended = await client.post("/api/v1/auth/logout", json=refresh, headers=tenant_only)
    assert ended.status_code == 204, ended.text
    forgot = await client.post(
        "/api/v1/auth/forgot-password", json={"email": joiner}, headers=tenant_only
    )
    assert forgot.status_code == 202, forgot.text
    assert outbox.new() == []
    from backend.flags import service as flags
    from backend.flags.model import Feature

    flag = f"coverage.{tenant.slug}"
    feature = Feature.model_validate({"name": flag, "enabled": True})
    flags.put_flag(sync_engine, sync_redis, feature, overridable=True, actor="test")
    override = f"/api/v1/flags/{flag}/override"
    switched = await client.put(override, json={"enabled": False}, headers=owner)
    assert switched.status_code == 200, switched.text
    assert (await client.delete(override, headers=owner)).status_code == 204
    assert outbox.new() == []

    named = {t for v in WRITES.values() if not isinstance(v, str) for t in v}
    assert named - recorded == set(), "event types no call recorded"
