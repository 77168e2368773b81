"""Redis keys carry the tenant's hash tag; queue partitions are stable and spread evenly."""

from __future__ import annotations

import collections
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenancy import keys


def test_tenant_key_has_hash_tag() -> None:
    tid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert keys.tenant_key(tid, "ratelimit", "user") == f"tf:{{{tid}}}:ratelimit:user"


@pytest.mark.parametrize("part", ["", "a{b", "c}d"])
def test_key_parts_cannot_break_the_hash_tag(part: str) -> None:
    with pytest.raises(ValueError):
        keys.tenant_key(uuid.uuid4(), part)


def test_platform_keys_are_not_tenant_keys() -> None:
    assert keys.registry_cache_key("slug", "acme") == "tf:{registry}:v1:slug:acme"
    assert keys.registry_generation_key().startswith("tf:{registry}:")
    with pytest.raises(ValueError):
        keys.registry_cache_key("slug", "a}b")


@given(st.uuids(), st.integers(min_value=1, max_value=64))
def test_partition_is_stable_and_in_range(tid: uuid.UUID, partitions: int) -> None:
    p = keys.partition_of(tid, partitions)
    assert 0 <= p < partitions
    assert keys.partition_of(str(tid), partitions) == p
    assert keys.queue_for(tid, partitions) == f"tf.p{p}"


def test_partitions_spread_evenly() -> None:
    counts = collections.Counter(keys.partition_of(uuid.uuid4(), 4) for _ in range(8000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 1700  # 2000 expected each


def test_pinned_queue_wins_over_partition() -> None:
    assert keys.queue_for(uuid.uuid4(), 4, pinned="bigco") == "tf.pinned.bigco"
    with pytest.raises(ValueError):
        keys.pinned_queue("bad name")
