"""The registry cache in Redis: versioned keys, bad entries, failed invalidations."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import redis as redis_sync

from tenancy import keys, registry
from tenancy.registry import TenantRecord
from tests.conftest import assert_problem, login


def _entry(tenant, **changes: object) -> bytes:
    data = json.loads(tenant.record.to_json())
    data.update(changes)
    for key in [k for k, v in changes.items() if v is _DROP]:
        del data[key]
    return json.dumps(data).encode()


_DROP = object()


@pytest.mark.parametrize(
    "make_raw",
    [
        lambda t: b"\x80\x81 not json",
        lambda t: b"[]",
        lambda t: b"{}",
        lambda t: _entry(t, queue=_DROP),  # an older format without a field
        lambda t: _entry(t, extra="new field"),  # a newer format with one more
        lambda t: _entry(t, id=42),
        lambda t: _entry(t, schema_name="__tenant__"),
        lambda t: _entry(t, created_at="yesterday"),
    ],
    ids=["bytes", "list", "empty", "missing", "extra", "int-id", "bad-schema", "bad-date"],
)
async def test_undecodable_cache_entry_is_a_miss(app, client, make_tenant, sync_redis, make_raw):
    tenant = make_tenant("badc")
    headers = await login(client, tenant)
    slug_key = keys.registry_cache_key("slug", tenant.slug)
    id_key = keys.registry_cache_key("id", str(tenant.id))
    for key in (slug_key, id_key):
        sync_redis.set(key, make_raw(tenant), ex=300)
    app.state.resources.registry.forget_all()
    by_slug = await client.get("/api/v1/users/me", headers=headers)
    assert by_slug.status_code == 200, by_slug.text
    sync_redis.set(id_key, make_raw(tenant), ex=300)
    app.state.resources.registry.forget_all()
    by_id = await client.get(
        "/api/v1/users/me", headers={"Authorization": headers["Authorization"]}
    )
    assert by_id.status_code == 200, by_id.text
    # The bad entries were replaced by good ones read from PostgreSQL.
    for key in (slug_key, id_key):
        assert TenantRecord.from_json(sync_redis.get(key)).id == tenant.id


DEAD_REDIS = "redis://127.0.0.1:1/0"


async def test_invalidation_retries_a_redis_blip(make_tenant, sync_redis, monkeypatch):
    tenant = make_tenant("blip")
    key = keys.registry_cache_key("slug", tenant.slug)
    sync_redis.set(key, tenant.record.to_json(), ex=300)
    real_pipeline = sync_redis.pipeline
    calls: list[int] = []

    def flaky_pipeline(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise redis_sync.ConnectionError("connection reset by peer")
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(sync_redis, "pipeline", flaky_pipeline)
    registry.invalidate(sync_redis, tenant.record)
    assert len(calls) == 2 and sync_redis.get(key) is None


def test_invalidation_that_keeps_failing_raises(make_tenant):
    tenant = make_tenant("noinv")
    dead = redis_sync.Redis.from_url(DEAD_REDIS, socket_connect_timeout=0.5)
    with pytest.raises(registry.InvalidationFailed) as caught:
        registry.invalidate(dead, tenant.record)
    assert caught.value.tenant == tenant.record


async def _operator_app(settings, **changes):
    from backend.main import create_app

    app = create_app(settings.model_copy(update=changes))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")


@pytest.mark.parametrize("action", ["suspend", "delete"])
async def test_status_change_with_redis_away_is_503_not_success(
    settings, make_tenant, platform_headers, client, sync_engine, sync_redis, action
):
    """The tenant stays cached as active in Redis; the operator's process cannot reach it."""
    tenant = make_tenant("stale")
    headers = await login(client, tenant)  # fills the Redis copy: status active
    assert sync_redis.get(keys.registry_cache_key("slug", tenant.slug)) is not None
    app, c = await _operator_app(settings, redis_url=DEAD_REDIS)
    async with app.router.lifespan_context(app), c:
        url = f"/platform/v1/tenants/{tenant.slug}"
        if action == "suspend":
            resp = await c.patch(url, json={"status": "suspended"}, headers=platform_headers)
        else:
            resp = await c.delete(url, headers=platform_headers)
    body = assert_problem(resp, 503, "cache-invalidation-failed")
    stale = settings.registry_max_staleness_seconds
    assert body["stale_for_seconds"] == stale and f"up to {stale} seconds" in body["detail"]
    assert "in PostgreSQL" in body["detail"] and resp.headers["retry-after"]
    stored = "suspended" if action == "suspend" else "deleting"
    assert body["stored_status"] == stored
    with sync_engine.connect() as conn:
        assert registry.get_by_slug(conn, tenant.slug).status == stored
    if action == "suspend":
        # Repeating the change once Redis answers enforces it at once.
        resp = await client.patch(
            f"/platform/v1/tenants/{tenant.slug}",
            json={"status": "suspended"},
            headers=platform_headers,
        )
        assert resp.status_code == 200, resp.text
        await asyncio.sleep(0.2)  # the pub/sub listener drops the local copy
        resp = await client.get("/api/v1/users/me", headers=headers)
        assert_problem(resp, 403, "tenant-suspended")
