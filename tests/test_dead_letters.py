"""Dead letters for operators: the /platform/v1/dead-letters API and `tenantflow dead-letters`.

Lists read rows written straight into the table; replays run end to end (outbox -> relay -> a
real Celery worker -> a handler that fails until the test "fixes" it -> dead letter -> replay
through the API or the CLI -> the handler's effect, once)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select

from backend.events import outbox
from backend.events.models import DeadLetter, OutboxEvent
from tenancy.context import bind_tenant
from tenancy.db import sync_tenant_session
from tests.conftest import assert_problem, wait_until
from tests.event_handlers import FlakyProbe, Probe, flaky_key
from tests.test_cli import cli
from tests.test_events_pipeline import (  # noqa: F401 (fixtures)
    _description,
    _inbox,
    _project,
    _record,
    events_worker,
    relay,
)

BASE = "/platform/v1/dead-letters"


def _letter(
    sync_engine: Any,
    tenant: Any,
    *,
    event_type: str = "Probe",
    failed_at: dt.datetime | None = None,
    replayed_at: dt.datetime | None = None,
    handler: str = "tests.append",
    envelope: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Write a dead letter row directly; its id."""
    letter_id, event_id = uuid.uuid4(), uuid.uuid4()
    with sync_engine.begin() as conn:
        conn.execute(
            insert(DeadLetter).values(
                id=letter_id,
                tenant_id=tenant.id,
                event_id=event_id,
                event_type=event_type,
                handler=handler,
                envelope=envelope or {"id": str(event_id), "type": event_type, "payload": {}},
                error="RuntimeError: boom",
                attempts=3,
                failed_at=failed_at or dt.datetime.now(dt.UTC),
                replayed_at=replayed_at,
            )
        )
    return letter_id


def _letters_of(sync_engine: Any, tenant: Any) -> list[Any]:
    with sync_engine.connect() as conn:
        return list(conn.execute(select(DeadLetter).where(DeadLetter.tenant_id == tenant.id)).all())


async def _all_pages(client: Any, headers: dict[str, str], **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(BASE, params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


# --- auth and input ---------------------------------------------------------------------------


async def test_every_dead_letter_route_needs_an_operator(client, make_tenant, sync_engine):
    letter = _letter(sync_engine, make_tenant("dlq-auth"))
    for method, path in (
        ("GET", BASE),
        ("GET", f"{BASE}/{letter}"),
        ("POST", f"{BASE}/{letter}/replay"),
    ):
        for headers in ({}, {"Authorization": "Bearer not-an-operator-token"}):
            resp = await client.request(method, path, headers=headers)
            assert_problem(resp, 401, "invalid-operator-token")
    with sync_engine.connect() as conn:
        replayed = conn.execute(
            select(DeadLetter.replayed_at).where(DeadLetter.id == letter)
        ).scalar_one()
    assert replayed is None


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (BASE, {"limit": "0"}),
        (BASE, {"limit": "101"}),
        (BASE, {"limit": "many"}),
        (BASE, {"cursor": "not-a-cursor"}),
        (BASE, {"cursor": "W10"}),  # a valid base64 JSON list of the wrong shape
        (BASE, {"type": "Task\x00Created"}),
        (BASE, {"tenant": "x" * 41}),
        (BASE, {"tenant": "acme\x00"}),
        (f"{BASE}/not-a-uuid", {}),
    ],
)
async def test_bad_input_is_422_problem(client, platform_headers, path, params):
    resp = await client.get(path, params=params, headers=platform_headers)
    assert_problem(resp, 422)


async def test_bad_id_on_replay_is_422(client, platform_headers):
    resp = await client.post(f"{BASE}/42/replay", headers=platform_headers)
    assert_problem(resp, 422, "validation-error")
    resp = await client.post(
        f"{BASE}/{uuid.uuid4()}/replay", params={"force": "maybe"}, headers=platform_headers
    )
    assert_problem(resp, 422, "validation-error")


# --- list and get -------------------------------------------------------------------------------


async def test_list_is_newest_first_filtered_and_paginated(
    client, platform_headers, make_tenant, sync_engine
):
    a, b = make_tenant("dlq-a"), make_tenant("dlq-b")
    kind = f"Kind{uuid.uuid4().hex[:8]}"
    other = f"Other{uuid.uuid4().hex[:8]}"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    # a: five letters of `kind` and one of `other`; b: two of `kind`. Two of a's share a time:
    # the id breaks the tie, and no page loses or repeats one.
    times = [start + dt.timedelta(seconds=s) for s in (1, 2, 3, 3, 5)]
    a_kind = [_letter(sync_engine, a, event_type=kind, failed_at=t) for t in times]
    a_other = _letter(sync_engine, a, event_type=other, failed_at=start + dt.timedelta(seconds=4))
    b_kind = [
        _letter(sync_engine, b, event_type=kind, failed_at=start + dt.timedelta(seconds=s))
        for s in (6, 7)
    ]

    resp = await client.get(BASE, params={"tenant": a.slug}, headers=platform_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert {i["id"] for i in items} == {str(x) for x in [*a_kind, a_other]}
    stamps = [dt.datetime.fromisoformat(i["failed_at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)
    first = items[0]
    assert set(first) == {
        "id",
        "tenant",
        "tenant_id",
        "event_id",
        "event_type",
        "handler",
        "error",
        "attempts",
        "failed_at",
        "replayed_at",
        "envelope",
    }
    assert first["tenant"] == a.slug and first["tenant_id"] == str(a.id)
    assert first["id"] == str(a_kind[-1]) and first["replayed_at"] is None
    assert first["attempts"] == 3 and first["envelope"]["type"] == kind

    # Pages of two over a's five `kind` letters: 2 + 2 + 1, in the same order as one page.
    pages = await _all_pages(client, platform_headers, tenant=a.slug, type=kind, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    whole = await _all_pages(client, platform_headers, tenant=a.slug, type=kind)
    assert [x for p in pages for x in p] == whole[0]
    assert set(whole[0]) == {str(x) for x in a_kind}

    # The type filter alone spans tenants; the tenant filter alone spans types.
    by_type = await _all_pages(client, platform_headers, type=kind, limit=100)
    assert set(by_type[0]) == {str(x) for x in [*a_kind, *b_kind]}
    assert by_type[0][:2] == [str(b_kind[1]), str(b_kind[0])]
    only_b = await client.get(
        BASE, params={"tenant": b.slug, "type": other}, headers=platform_headers
    )
    assert only_b.json() == {"items": [], "next_cursor": None}


async def test_unknown_tenant_filter_is_404(client, platform_headers):
    resp = await client.get(BASE, params={"tenant": "no-such-tenant"}, headers=platform_headers)
    assert_problem(resp, 404, "tenant-not-found")


async def test_get_one_and_404(client, platform_headers, make_tenant, sync_engine):
    tenant = make_tenant("dlq-get")
    letter = _letter(sync_engine, tenant, event_type="Probe")
    resp = await client.get(f"{BASE}/{letter}", headers=platform_headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == str(letter) and resp.json()["tenant"] == tenant.slug
    missing = await client.get(f"{BASE}/{uuid.uuid4()}", headers=platform_headers)
    assert_problem(missing, 404, "dead-letter-not-found")


# --- replay -------------------------------------------------------------------------------------


async def test_replay_unknown_id_is_404(client, platform_headers):
    resp = await client.post(f"{BASE}/{uuid.uuid4()}/replay", headers=platform_headers)
    assert_problem(resp, 404, "dead-letter-not-found")


async def test_replay_is_refused_for_a_suspended_tenant(
    client, platform_headers, make_tenant, sync_engine, sync_redis
):
    from backend.platform import service

    tenant = make_tenant("dlq-susp")
    letter = _letter(sync_engine, tenant)
    service.update_tenant(
        sync_engine, sync_redis, tenant.slug, {"status": "suspended"}, stale_seconds=60
    )
    resp = await client.post(f"{BASE}/{letter}/replay", headers=platform_headers)
    body = assert_problem(resp, 409, "tenant-not-active")
    assert body["tenant_status"] == "suspended"
    forced = await client.post(
        f"{BASE}/{letter}/replay", params={"force": "true"}, headers=platform_headers
    )
    assert_problem(forced, 409, "tenant-not-active")
    [row] = _letters_of(sync_engine, tenant)
    assert row.replayed_at is None


@pytest.mark.usefixtures("events_worker", "relay")
async def test_replay_end_to_end_has_its_effect_once(
    client, platform_headers, make_tenant, sync_engine, sync_redis
):
    tenant = make_tenant("dlq-e2e")
    project_id = _project(sync_engine, tenant)
    sync_redis.set(flaky_key(project_id), "1")  # the handler is "broken"
    try:
        [event_id] = _record(sync_engine, tenant, FlakyProbe(project_id=project_id, mark="f"))
        found = wait_until(lambda: _letters_of(sync_engine, tenant), 30)
        assert found, "no dead letter"
    finally:
        sync_redis.delete(flaky_key(project_id))  # the handler is "fixed"
    [letter] = found
    assert letter.event_id == event_id and letter.handler == "tests.flaky_append"
    assert "flaky handler is broken" in letter.error
    assert _description(sync_engine, tenant, project_id) == ""
    # Only the entry that says the handler gave up (the relay then stops redelivering it).
    assert _inbox(sync_engine, tenant) == [(event_id, "tests.flaky_append")]

    resp = await client.post(f"{BASE}/{letter.id}/replay", headers=platform_headers)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["id"] == str(letter.id) and body["replayed_at"] is not None
    assert wait_until(lambda: _description(sync_engine, tenant, project_id) == "f", 30)
    assert _inbox(sync_engine, tenant) == [(event_id, "tests.flaky_append")]
    shown = (await client.get(f"{BASE}/{letter.id}", headers=platform_headers)).json()
    assert shown["replayed_at"] == body["replayed_at"]

    again = await client.post(f"{BASE}/{letter.id}/replay", headers=platform_headers)
    assert_problem(again, 409, "already-replayed")
    # Forced, the message is sent again and the inbox skips it: still one effect.
    forced = await client.post(
        f"{BASE}/{letter.id}/replay", params={"force": "true"}, headers=platform_headers
    )
    assert forced.status_code == 202, forced.text
    assert forced.json()["replayed_at"] > body["replayed_at"]
    time.sleep(1.5)
    assert _description(sync_engine, tenant, project_id) == "f"
    assert len(_letters_of(sync_engine, tenant)) == 1  # the replays did not fail again


# --- CLI ----------------------------------------------------------------------------------------


def _probe_letter(sync_engine: Any, tenant: Any, project_id: uuid.UUID, mark: str) -> uuid.UUID:
    """A dead letter of a real Probe event (as if tests.append had failed on it)."""
    [event_id] = _record(sync_engine, tenant, Probe(project_id=project_id, mark=mark))
    with bind_tenant(tenant.record), sync_tenant_session(sync_engine) as session:
        row = session.execute(select(OutboxEvent).where(OutboxEvent.id == event_id)).scalar_one()
        doc = outbox.envelope(row, tenant.id)
    # No relay runs in this test: the row stays unpublished and only the replay delivers it.
    return _letter(sync_engine, tenant, event_type="Probe", handler="tests.append", envelope=doc)


@pytest.mark.usefixtures("events_worker")
def test_cli_list_show_and_replay(make_tenant, sync_engine):
    tenant = make_tenant("dlq-cli")
    project_id = _project(sync_engine, tenant)
    letter = _probe_letter(sync_engine, tenant, project_id, "c")
    older = _letter(
        sync_engine,
        tenant,
        event_type="Other",
        failed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
    )

    listed = cli("dead-letters", "list", "--tenant", tenant.slug, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)] == [str(letter), str(older)]
    typed = cli("dead-letters", "list", "--tenant", tenant.slug, "--type", "Other", "--json")
    assert [d["id"] for d in json.loads(typed.stdout)] == [str(older)]
    limited = cli("dead-letters", "list", "--tenant", tenant.slug, "--limit", "1")
    assert limited.returncode == 0, limited.stderr
    assert str(letter) in limited.stdout and str(older) not in limited.stdout
    assert "1 dead letter(s) (more" in limited.stdout
    table = cli("dead-letters", "list", "--tenant", tenant.slug)
    assert str(letter) in table.stdout and "2 dead letter(s)" in table.stdout

    shown = cli("dead-letters", "show", str(letter), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["envelope"]["payload"]["mark"] == "c"
    assert "tests.append" in cli("dead-letters", "show", str(letter)).stdout

    replayed = cli("dead-letters", "replay", str(letter), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["replayed_at"] is not None
    assert wait_until(lambda: _description(sync_engine, tenant, project_id) == "c", 30)

    again = cli("dead-letters", "replay", str(letter))
    assert again.returncode == 1 and "force" in again.stderr
    forced = cli("dead-letters", "replay", str(letter), "--force")
    assert forced.returncode == 0 and "replayed" in forced.stdout, forced.stderr
    time.sleep(1.0)
    assert _description(sync_engine, tenant, project_id) == "c"


def test_cli_errors_and_help():
    missing = str(uuid.uuid4())
    for args in (("show", missing), ("replay", missing)):
        result = cli("dead-letters", *args)
        assert result.returncode == 1 and "no dead letter" in result.stderr.lower(), args
    bad = cli("dead-letters", "show", "nope")
    assert bad.returncode == 2 and "not a dead letter id" in bad.stderr
    unknown = cli("dead-letters", "list", "--tenant", "no-such-tenant")
    assert unknown.returncode == 1 and "no tenant" in unknown.stderr.lower()
    for args in ([], ["list"], ["show"], ["replay"]):
        result = cli("dead-letters", *args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, args
    assert "dead-letters" in cli("--help").stdout
