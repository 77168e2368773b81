"""The registry cache in Redis: versioned keys, bad entries, failed invalidations."""

from __future__ import annotations

import json

import pytest

from tenancy import keys
from tenancy.registry import TenantRecord
from tests.conftest import login


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
