"""Changing flags: PostgreSQL first (with the audit row), then every process is told.

Each change runs in one transaction that increments ``flag_state.version`` (its row lock
orders concurrent changes), writes the row and its audit entry, and reads the whole state back
as a snapshot. After the commit the snapshot goes to Redis (only if newer than what Redis
holds: a slower writer cannot roll it back) with a pub/sub notice; every process's FlagStore
(backend/flags/store.py) swaps its copy within a second. If Redis is away the change is still
stored; processes find it at their periodic check.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, cast

import redis as redis_sync
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from backend.flags.model import Feature, Segment
from backend.flags.tables import FlagAudit, FlagOverride, FlagRow, FlagState, SegmentRow
from backend.kit.errors import Problem
from tenancy import keys

log = logging.getLogger(__name__)

FLAGS = cast(Table, FlagRow.__table__)
SEGMENTS = cast(Table, SegmentRow.__table__)
OVERRIDES = cast(Table, FlagOverride.__table__)
AUDIT = cast(Table, FlagAudit.__table__)
STATE = cast(Table, FlagState.__table__)

#: A hash: ``version`` (an integer, what the periodic checks read) and ``state`` (the JSON
#: snapshot, read only when the version is newer than a process's copy).
SNAPSHOT_KEY = keys.platform_key("flags", "snapshot")
CHANNEL = keys.platform_key("flags", "changed")
#: Store the snapshot only if its version is newer than the stored one, or (ARGV[4], a repair
#: from PostgreSQL) if the stored one is exactly the version the repairer found stale: a
#: snapshot of another database or of PostgreSQL before a restore can carry a higher version.
#: (A string here is the layout of earlier builds: replaced.)
_PUBLISH = """
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then redis.call('DEL', KEYS[1]) end
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
local stale = ARGV[4] ~= '' and stored == tonumber(ARGV[4])
if stored >= tonumber(ARGV[2]) and not stale then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""


def dump(model: Feature | Segment) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def snapshot(conn: Connection) -> dict[str, Any]:
    """Everything a process evaluates with, as one JSON document (read in the caller's
    transaction, so it matches its version)."""
    version = conn.execute(select(STATE.c.version).where(STATE.c.id == 1)).scalar_one()
    flags = conn.execute(select(FLAGS).order_by(FLAGS.c.name)).all()
    segments = conn.execute(select(SEGMENTS).order_by(SEGMENTS.c.id)).all()
    overrides: dict[str, dict[str, bool]] = {}
    for row in conn.execute(select(OVERRIDES)):
        overrides.setdefault(str(row.tenant_id), {})[row.name] = row.enabled
    return {
        "version": version,
        "features": [r.definition for r in flags],
        "segments": [r.definition for r in segments],
        "overridable": [r.name for r in flags if r.tenant_overridable],
        "overrides": overrides,
    }


def publish(redis: redis_sync.Redis, state: dict[str, Any], *, stale: int | None = None) -> bool:
    """Hand a snapshot to every process (if newer than Redis's, or if Redis still holds the
    ``stale`` version); False if Redis could not take it."""
    replace = "" if stale is None else str(stale)
    try:
        redis.eval(
            _PUBLISH,
            1,
            SNAPSHOT_KEY,
            json.dumps(state),
            str(state["version"]),
            CHANNEL,
            replace,
        )
    except redis_sync.RedisError as exc:
        log.warning(
            "flags: change stored, but Redis is unavailable (%s): processes pick it up "
            "at their periodic check",
            exc,
        )
        return False
    return True


def _bump(conn: Connection) -> int:
    return int(
        conn.execute(
            update(STATE)
            .where(STATE.c.id == 1)
            .values(version=STATE.c.version + 1)
            .returning(STATE.c.version)
        ).scalar_one()
    )


def _audit(
    conn: Connection,
    version: int,
    kind: str,
    name: str,
    action: str,
    actor: str,
    before: Any,
    after: Any,
    tenant_id: uuid.UUID | None = None,
) -> None:
    conn.execute(
        insert(AUDIT).values(
            kind=kind,
            name=name,
            tenant_id=tenant_id,
            action=action,
            actor=actor,
            before=before,
            after=after,
            version=version,
        )
    )


def _flag_doc(row: Any) -> dict[str, Any]:
    return {"definition": row.definition, "tenant_overridable": row.tenant_overridable}


def _check_segments(conn: Connection, feature: Feature) -> None:
    wanted = {s for strategy in feature.strategies for s in strategy.segments}
    if not wanted:
        return
    known = set(conn.execute(select(SEGMENTS.c.id).where(SEGMENTS.c.id.in_(wanted))).scalars())
    if missing := sorted(wanted - known):
        raise Problem(
            422,
            "unknown-segment",
            f"Segments {missing} do not exist; create them "
            "first (PUT /platform/v1/segments/{id}).",
            segments=missing,
        )


def put_flag(
    engine: Engine, redis: redis_sync.Redis, feature: Feature, *, overridable: bool, actor: str
) -> tuple[dict[str, Any], bool]:
    """Create or replace a flag; (its row as stored, whether it was created)."""
    definition = dump(feature)
    # Ours, not the definition's: the first in its own column, the others written by the
    # store. A GET's output put back (edited) must not store them inside the definition.
    for key in ("tenantOverridable", "updatedAt", "updatedBy"):
        definition.pop(key, None)
    with engine.begin() as conn:
        version = _bump(conn)
        _check_segments(conn, feature)
        before = conn.execute(select(FLAGS).where(FLAGS.c.name == feature.name)).first()
        values = {"definition": definition, "tenant_overridable": overridable, "updated_by": actor}
        row = conn.execute(
            pg_insert(FLAGS)
            .values(name=feature.name, **values)
            .on_conflict_do_update(
                index_elements=["name"], set_={**values, "updated_at": func.now()}
            )
            .returning(*FLAGS.c)
        ).one()
        _audit(
            conn,
            version,
            "flag",
            feature.name,
            "update" if before else "create",
            actor,
            _flag_doc(before) if before else None,
            _flag_doc(row),
        )
        if not overridable:  # overrides of a flag no longer overridable stop counting
            conn.execute(delete(OVERRIDES).where(OVERRIDES.c.name == feature.name))
        state = snapshot(conn)
    publish(redis, state)
    return dict(row._mapping), before is None


def delete_flag(engine: Engine, redis: redis_sync.Redis, name: str, *, actor: str) -> None:
    with engine.begin() as conn:
        version = _bump(conn)
        before = conn.execute(delete(FLAGS).where(FLAGS.c.name == name).returning(*FLAGS.c)).first()
        if before is None:
            raise Problem(404, "flag-not-found", f"No flag '{name}'.")
        _audit(conn, version, "flag", name, "delete", actor, _flag_doc(before), None)
        state = snapshot(conn)
    publish(redis, state)


def get_flag(engine: Engine, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(FLAGS).where(FLAGS.c.name == name)).first()
    if row is None:
        raise Problem(404, "flag-not-found", f"No flag '{name}'.")
    return dict(row._mapping)


def list_flags(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(FLAGS).order_by(FLAGS.c.name))]


def history(engine: Engine, kinds: tuple[str, ...], name: str, limit: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AUDIT)
            .where(AUDIT.c.kind.in_(kinds), AUDIT.c.name == name)
            .order_by(AUDIT.c.id.desc())
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def put_segment(
    engine: Engine, redis: redis_sync.Redis, segment: Segment, *, actor: str
) -> tuple[dict[str, Any], bool]:
    definition = dump(segment)
    with engine.begin() as conn:
        version = _bump(conn)
        before = conn.execute(select(SEGMENTS).where(SEGMENTS.c.id == segment.id)).first()
        row = conn.execute(
            pg_insert(SEGMENTS)
            .values(id=segment.id, definition=definition, updated_by=actor)
            .on_conflict_do_update(
                index_elements=["id"],
                set_={"definition": definition, "updated_by": actor, "updated_at": func.now()},
            )
            .returning(*SEGMENTS.c)
        ).one()
        _audit(
            conn,
            version,
            "segment",
            str(segment.id),
            "update" if before else "create",
            actor,
            before.definition if before else None,
            definition,
        )
        state = snapshot(conn)
    publish(redis, state)
    return dict(row._mapping), before is None


def delete_segment(engine: Engine, redis: redis_sync.Redis, segment_id: int, *, actor: str) -> None:
    with engine.begin() as conn:
        version = _bump(conn)
        users = [
            r.name
            for r in conn.execute(select(FLAGS.c.name, FLAGS.c.definition))
            if any(
                segment_id in (s.get("segments") or [])
                for s in (r.definition.get("strategies") or [])
            )
        ]
        if users:
            raise Problem(
                409,
                "segment-in-use",
                f"Segment {segment_id} is used by flags "
                f"{', '.join(sorted(users))}; change them first.",
                flags=sorted(users),
            )
        before = conn.execute(
            delete(SEGMENTS).where(SEGMENTS.c.id == segment_id).returning(*SEGMENTS.c)
        ).first()
        if before is None:
            raise Problem(404, "segment-not-found", f"No segment {segment_id}.")
        _audit(conn, version, "segment", str(segment_id), "delete", actor, before.definition, None)
        state = snapshot(conn)
    publish(redis, state)


def get_segment(engine: Engine, segment_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(SEGMENTS).where(SEGMENTS.c.id == segment_id)).first()
    if row is None:
        raise Problem(404, "segment-not-found", f"No segment {segment_id}.")
    return dict(row._mapping)


def list_segments(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(SEGMENTS).order_by(SEGMENTS.c.id))]


def set_override(
    engine: Engine,
    redis: redis_sync.Redis,
    tenant_id: uuid.UUID,
    name: str,
    enabled: bool | None,
    *,
    actor: str,
) -> None:
    """A tenant's own on/off for an overridable flag; None removes it."""
    with engine.begin() as conn:
        version = _bump(conn)
        flag = conn.execute(select(FLAGS).where(FLAGS.c.name == name)).first()
        if flag is None:
            raise Problem(404, "flag-not-found", f"No flag '{name}'.")
        if not flag.tenant_overridable:
            raise Problem(
                409,
                "flag-not-overridable",
                f"Flag '{name}' is not overridable by tenants; operators decide it.",
            )
        where = (OVERRIDES.c.tenant_id == tenant_id) & (OVERRIDES.c.name == name)
        before = conn.execute(select(OVERRIDES.c.enabled).where(where)).scalar()
        if enabled is None:
            conn.execute(delete(OVERRIDES).where(where))
        else:
            conn.execute(
                pg_insert(OVERRIDES)
                .values(tenant_id=tenant_id, name=name, enabled=enabled, updated_by=actor)
                .on_conflict_do_update(
                    index_elements=["tenant_id", "name"],
                    set_={"enabled": enabled, "updated_by": actor, "updated_at": func.now()},
                )
            )
        action = "delete" if enabled is None else ("create" if before is None else "update")
        _audit(
            conn,
            version,
            "override",
            name,
            action,
            actor,
            None if before is None else {"enabled": before},
            None if enabled is None else {"enabled": enabled},
            tenant_id=tenant_id,
        )
        state = snapshot(conn)
    publish(redis, state)


def load(engine: Engine) -> dict[str, Any]:
    """The current snapshot, from PostgreSQL."""
    with engine.connect() as conn:
        return snapshot(conn)


def latest_version(engine: Engine) -> int:
    """The version of the last change (one indexed row)."""
    with engine.connect() as conn:
        return int(conn.execute(select(STATE.c.version).where(STATE.c.id == 1)).scalar_one())
