"""Plans and per-tenant overrides: read and change them, and tell every API process.

Every change writes its audit row (who, before, after) in the change's own transaction: an
entry exists exactly when the change was stored."""

from __future__ import annotations

import logging
import uuid
from typing import Any, cast

import redis as redis_sync
from sqlalchemy import Connection, Engine, Table, func, select
from sqlalchemy.dialects.postgresql import insert

from backend.kit.errors import Problem
from backend.platform.service import get_tenant
from backend.ratelimit.models import LimitAudit, Plan, TenantLimits
from backend.ratelimit.policy import CHANNEL, FIELDS, OVERRIDABLE, effective
from backend.ratelimit.schemas import (
    LimitAuditEntry,
    Limits,
    LimitsIn,
    LimitsOut,
    PlanIn,
    PlanOut,
)

log = logging.getLogger(__name__)

PLANS = cast(Table, Plan.__table__)
LIMITS = cast(Table, TenantLimits.__table__)
AUDIT = cast(Table, LimitAudit.__table__)
PLAN_FIELDS = (*FIELDS.values(), "concurrent_requests", "shadow", "fail_closed")


def _announce(redis: redis_sync.Redis) -> None:
    """Every API process reloads its copy at once; without Redis, within its refresh period."""
    try:
        redis.publish(CHANNEL, "changed")
    except redis_sync.RedisError as exc:
        log.warning(
            "rate limits: change stored, but Redis is unavailable (%s): API processes apply it "
            "at their periodic refresh",
            exc,
        )


def _plan_out(row: Any) -> PlanOut:
    return PlanOut.model_validate(row, from_attributes=True)


def list_plans(engine: Engine) -> list[PlanOut]:
    with engine.connect() as conn:
        rows = conn.execute(select(PLANS).order_by(Plan.requests_per_minute)).all()
    return [_plan_out(r) for r in rows]


def get_plan(engine: Engine, name: str) -> PlanOut:
    with engine.connect() as conn:
        row = conn.execute(select(PLANS).where(Plan.name == name)).first()
    if row is None:
        raise Problem(404, "plan-not-found", f"No plan '{name}'. Plans: free, pro, enterprise.")
    return _plan_out(row)


def _values(row: Any, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """A row's limits as the audit stores them (JSON); None when there was no row."""
    return None if row is None else {f: getattr(row, f) for f in fields}


def _audit(
    conn: Connection,
    kind: str,
    name: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    if before == after:  # stored again as it was: nothing an operator needs to see
        return
    conn.execute(
        AUDIT.insert().values(
            kind=kind, name=name, tenant_id=tenant_id, actor=actor, before=before, after=after
        )
    )


def put_plan(
    engine: Engine, redis: redis_sync.Redis, name: str, data: PlanIn, *, actor: str
) -> PlanOut:
    """Replace a plan's limits (the plans themselves are fixed: free, pro, enterprise)."""
    values = {field: getattr(data, field) for field in PLAN_FIELDS}
    with engine.begin() as conn:
        # The row lock orders concurrent changes: each audit row's before is its predecessor's
        # after.
        before = conn.execute(select(PLANS).where(Plan.name == name).with_for_update()).first()
        row = conn.execute(
            PLANS.update()
            .where(Plan.name == name)
            .values(**values, updated_at=func.now())
            .returning(*PLANS.c)
        ).first()
        if row is not None:
            _audit(
                conn, "plan", name, actor, _values(before, PLAN_FIELDS), _values(row, PLAN_FIELDS)
            )
    if row is None:
        raise Problem(404, "plan-not-found", f"No plan '{name}'. Plans: free, pro, enterprise.")
    _announce(redis)
    return _plan_out(row)


def get_limits(engine: Engine, slug: str) -> LimitsOut:
    tenant = get_tenant(engine, slug)
    with engine.connect() as conn:
        plan = conn.execute(select(PLANS).where(Plan.name == tenant.plan)).one()
        override = conn.execute(select(LIMITS).where(TenantLimits.tenant_id == tenant.id)).first()
    limits = effective(plan, override)
    now = {FIELDS[p]: v for p, v in limits.per_minute.items()}
    return LimitsOut(
        tenant=tenant.slug,
        plan=tenant.plan,
        overrides=Limits(**{f: getattr(override, f, None) for f in OVERRIDABLE}),
        effective=Limits(**now, concurrent_requests=limits.concurrent_requests),
    )


def put_limits(
    engine: Engine, redis: redis_sync.Redis, slug: str, data: LimitsIn, *, actor: str
) -> LimitsOut:
    """Set or clear (null) the tenant's overrides; fields left out are kept."""
    tenant = get_tenant(engine, slug)
    changes = data.model_dump(exclude_unset=True)
    if changes:
        with engine.begin() as conn:
            before = conn.execute(
                select(LIMITS).where(TenantLimits.tenant_id == tenant.id).with_for_update()
            ).first()
            after = conn.execute(
                insert(LIMITS)
                .values(tenant_id=tenant.id, **changes)
                .on_conflict_do_update(
                    index_elements=["tenant_id"], set_={**changes, "updated_at": func.now()}
                )
                .returning(*LIMITS.c)
            ).one()
            _audit(
                conn,
                "tenant",
                tenant.slug,
                actor,
                _values(before, OVERRIDABLE),
                _values(after, OVERRIDABLE),
                tenant_id=tenant.id,
            )
        _announce(redis)
    return get_limits(engine, slug)


def _history(
    engine: Engine, kind: str, name: str, limit: int, tenant_id: uuid.UUID | None = None
) -> list[LimitAuditEntry]:
    query = select(AUDIT).where(AUDIT.c.kind == kind, AUDIT.c.name == name)
    if tenant_id is not None:
        query = query.where(AUDIT.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(AUDIT.c.id.desc()).limit(limit)).all()
    return [LimitAuditEntry.model_validate(r, from_attributes=True) for r in rows]


def plan_history(engine: Engine, name: str, limit: int) -> list[LimitAuditEntry]:
    """Changes of a plan's limits, newest first; 404 for a plan that does not exist."""
    get_plan(engine, name)
    return _history(engine, "plan", name, limit)


def tenant_history(engine: Engine, slug: str, limit: int) -> list[LimitAuditEntry]:
    """Changes of a tenant's overrides, newest first; 404 for an unknown tenant. Only this
    tenant's rows: a slug once used by a deleted tenant does not bring its changes along."""
    tenant = get_tenant(engine, slug)
    return _history(engine, "tenant", tenant.slug, limit, tenant.id)
