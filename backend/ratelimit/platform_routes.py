"""Operators' API for plans and per-tenant limits (/platform/v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from backend.kit.deps import ResourcesDep
from backend.kit.errors import problem_responses
from backend.kit.text import FreeText
from backend.platform.deps import Operator
from backend.ratelimit import service
from backend.ratelimit.schemas import LimitAuditEntry, LimitsIn, LimitsOut, PlanIn, PlanOut

router = APIRouter(prefix="/platform/v1", tags=["platform"])
Slug = Annotated[FreeText, Path(description="The tenant's slug.")]
PlanName = Annotated[FreeText, Path(description="free, pro or enterprise.")]
HistoryLimit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first.")]


@router.get(
    "/plans",
    response_model=list[PlanOut],
    responses=problem_responses(401),
    summary="List the plans and their limits",
)
def list_plans(_op: Operator, res: ResourcesDep) -> list[PlanOut]:
    return service.list_plans(res.sync_engine)


@router.get(
    "/plans/{name}",
    response_model=PlanOut,
    responses=problem_responses(401, 404, 422),
    summary="Get a plan's limits",
)
def get_plan(name: PlanName, _op: Operator, res: ResourcesDep) -> PlanOut:
    return service.get_plan(res.sync_engine, name)


@router.put(
    "/plans/{name}",
    response_model=PlanOut,
    responses=problem_responses(400, 401, 404, 422),
    summary="Replace a plan's limits (in effect on every API process within a second)",
)
def put_plan(name: PlanName, data: PlanIn, op: Operator, res: ResourcesDep) -> PlanOut:
    plan = service.put_plan(res.sync_engine, res.sync_redis, name, data, actor=op.actor)
    res.limits.invalidate()  # this process at once; the others through Redis pub/sub
    return plan


@router.get(
    "/plans/{name}/history",
    response_model=list[LimitAuditEntry],
    responses=problem_responses(401, 404, 422),
    summary="Changes of a plan's limits, newest first: who, when, before and after",
)
def plan_history(
    name: PlanName, _op: Operator, res: ResourcesDep, limit: HistoryLimit = 100
) -> list[LimitAuditEntry]:
    return service.plan_history(res.sync_engine, name, limit)


@router.get(
    "/tenants/{slug}/limits",
    response_model=LimitsOut,
    responses=problem_responses(401, 404, 422),
    summary="A tenant's limit overrides and the limits in effect",
)
def get_limits(slug: Slug, _op: Operator, res: ResourcesDep) -> LimitsOut:
    return service.get_limits(res.sync_engine, slug)


@router.put(
    "/tenants/{slug}/limits",
    response_model=LimitsOut,
    responses=problem_responses(400, 401, 404, 422),
    summary="Override a tenant's plan limits (null clears an override)",
)
def put_limits(slug: Slug, data: LimitsIn, op: Operator, res: ResourcesDep) -> LimitsOut:
    limits = service.put_limits(res.sync_engine, res.sync_redis, slug, data, actor=op.actor)
    res.limits.invalidate()
    return limits


@router.get(
    "/tenants/{slug}/limits/history",
    response_model=list[LimitAuditEntry],
    responses=problem_responses(401, 404, 422),
    summary="Changes of a tenant's limit overrides, newest first: who, when, before and after",
)
def limits_history(
    slug: Slug, _op: Operator, res: ResourcesDep, limit: HistoryLimit = 100
) -> list[LimitAuditEntry]:
    return service.tenant_history(res.sync_engine, slug, limit)
