"""Every Redis key and Celery queue name that belongs to a tenant is made here.

Tenant keys carry a Redis Cluster hash tag, ``tf:{<tenant id>}:...``, so all keys of a tenant
share a slot and multi-key Lua scripts stay cluster-safe. Platform keys (registry cache and the
like) live under ``tf:platform:``. Throttle counters (failed logins and the like) carry a hash
tag too, the tenant's or ``{platform}``, so one Lua script may touch several of them.
"""

from __future__ import annotations

import hashlib
import uuid

PLATFORM_QUEUE = "tf.platform"
PARTITION_QUEUE_PREFIX = "tf.p"
PINNED_QUEUE_PREFIX = "tf.pinned."


def tenant_key(tenant_id: uuid.UUID | str, *parts: str) -> str:
    """A key owned by a tenant: ``tf:{<tenant id>}:part:part``."""
    tid = str(uuid.UUID(str(tenant_id)))
    for part in parts:
        if not part or "{" in part or "}" in part:
            raise ValueError(f"invalid key part {part!r}")
    return ":".join(("tf", "{" + tid + "}", *parts))


def platform_key(*parts: str) -> str:
    """A key owned by the platform, not by any tenant."""
    for part in parts:
        if not part or "{" in part or "}" in part:
            raise ValueError(f"invalid key part {part!r}")
    return ":".join(("tf", "platform", *parts))


#: Hash tag of platform keys that a multi-key script touches together (operator login throttle).
PLATFORM_TAG = "{platform}"
_THROTTLE_SUBJECTS = ("account", "address")


def throttle_key(tenant_id: uuid.UUID | str | None, action: str, subject: str, value: str) -> str:
    """Failure counter of one subject of an action, e.g. failed logins of one account.

    ``tf:{<tenant id>}:throttle:<action>:<subject>:<digest>`` for a tenant, and
    ``tf:{platform}:throttle:<action>:<subject>:<digest>`` for the platform (tenant_id None).
    The value (an email, a client address) is hashed: keys hold no personal data, and no
    input can break the hash tag. Keys of one tenant (or of the platform) share a slot.
    """
    if not action.replace("-", "").isalnum() or subject not in _THROTTLE_SUBJECTS:
        raise ValueError(f"invalid throttle key {action!r} {subject!r}")
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    if tenant_id is None:
        return ":".join(("tf", PLATFORM_TAG, "throttle", action, subject, digest))
    return tenant_key(tenant_id, "throttle", action, subject, digest)


#: The registry cache shares one hash tag so its fill script stays cluster-safe.
REGISTRY_TAG = "{registry}"
#: Format version of cached registry entries. Bump it whenever TenantRecord's JSON changes:
#: during a rolling deploy old and new processes then read and write disjoint keys.
REGISTRY_CACHE_VERSION = "v1"


def registry_cache_key(kind: str, value: str) -> str:
    """Cached registry entry by 'slug' or 'id': ``tf:{registry}:v1:<kind>:<value>``."""
    if kind not in ("slug", "id") or not value or "{" in value or "}" in value:
        raise ValueError(f"invalid registry cache key {kind!r} {value!r}")
    return f"tf:{REGISTRY_TAG}:{REGISTRY_CACHE_VERSION}:{kind}:{value}"


def registry_generation_key() -> str:
    """Bumped on every registry change; a cache fill that raced a change is dropped."""
    return f"tf:{REGISTRY_TAG}:generation"


def partition_of(tenant_id: uuid.UUID | str, partitions: int) -> int:
    """Stable partition of a tenant: sha256 of its id mod partitions (same in every process)."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    digest = hashlib.sha256(uuid.UUID(str(tenant_id)).bytes).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def partition_queue(index: int) -> str:
    return f"{PARTITION_QUEUE_PREFIX}{index}"


def pinned_queue(name: str) -> str:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"invalid pinned queue name {name!r}")
    return PINNED_QUEUE_PREFIX + name


def queue_for(tenant_id: uuid.UUID | str, partitions: int, pinned: str | None = None) -> str:
    """The Celery queue of a tenant: its pinned queue, else its partition queue."""
    if pinned:
        return pinned_queue(pinned)
    return partition_queue(partition_of(tenant_id, partitions))


def all_partition_queues(partitions: int) -> list[str]:
    return [partition_queue(i) for i in range(partitions)]


def onetime_key(tenant_id: uuid.UUID | str, kind: str, digest_hex: str) -> str:
    """A single-use token of a tenant (invite, password reset), by the SHA-256 of its secret:
    ``tf:{<tenant id>}:onetime:<kind>:<digest>``."""
    if kind not in ("invite", "reset") or len(digest_hex) != 64:
        raise ValueError(f"invalid one-time token key {kind!r}")
    return tenant_key(tenant_id, "onetime", kind, digest_hex)


def onetime_index_key(tenant_id: uuid.UUID | str, kind: str) -> str:
    """Hash of a tenant's outstanding tokens of ``kind``: id -> digest (for listing, revoking)."""
    if kind not in ("invite", "reset"):
        raise ValueError(f"invalid one-time token kind {kind!r}")
    return tenant_key(tenant_id, "onetime", kind, "index")


def stats_generation_key(tenant_id: uuid.UUID | str) -> str:
    """Bumped on every task change of the tenant; cached stats carry the generation they were
    computed at, so a bump makes every cached figure of the tenant stale at once."""
    return tenant_key(tenant_id, "stats", "generation")


def stats_cache_key(tenant_id: uuid.UUID | str, generation: int, *parts: str) -> str:
    """A cached stats document: ``tf:{<tenant id>}:stats:<generation>:<parts>``."""
    return tenant_key(tenant_id, "stats", str(generation), *parts)


def idempotency_key(tenant_id: uuid.UUID | str, caller_digest: str, key: str) -> str:
    """A stored POST result: ``tf:{<tenant id>}:idem:<caller digest>:<sha256 of the key>``.

    Scoped by the caller's credential (its SHA-256), so one caller never sees another's
    response; the client's key is hashed, so no input can break the hash tag."""
    if len(caller_digest) != 64 or not all(c in "0123456789abcdef" for c in caller_digest):
        raise ValueError("caller digest must be a SHA-256 hex digest")
    return tenant_key(tenant_id, "idem", caller_digest, hashlib.sha256(key.encode()).hexdigest())
