from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from backend.analytics.repository import StatsRepository
from backend.analytics.schemas import ProjectStats, TenantStats
from backend.analytics.service import StatsService
from backend.identity.permissions import Principal, requires
from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from backend.kit.errors import problem_responses

router = APIRouter(prefix="/api/v1", tags=["analytics"])
AUTH_ERRORS = (400, 401, 403, 404)
#: hit (from Redis), miss (computed and stored) or bypass (Redis away: computed, not stored).
CACHE_HEADER = "X-Cache"


async def get_service(
    session: TenantDB, resources: ResourcesDep, tenant: CurrentTenant
) -> StatsService:
    ttl = resources.settings.stats_cache_ttl_seconds
    return StatsService(StatsRepository(session), resources.redis, tenant.id, ttl)


Service = Annotated[StatsService, Depends(get_service)]


@router.get(
    "/projects/{project_id}/stats",
    response_model=ProjectStats,
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="A project's task figures: per status and category, overdue, weekly flow, cycle "
    "time, workload (cached briefly)",
)
async def project_stats(
    project_id: uuid.UUID,
    _caller: Annotated[Principal, requires("analytics:read")],
    service: Service,
    response: Response,
) -> ProjectStats:
    stats, status = await service.project_stats(project_id)
    response.headers[CACHE_HEADER] = status
    return stats


@router.get(
    "/analytics/tenant",
    response_model=TenantStats,
    responses=problem_responses(*AUTH_ERRORS),
    summary="The workspace's task figures over every project, with per-project totals "
    "(cached briefly)",
)
async def tenant_stats(
    _caller: Annotated[Principal, requires("analytics:read")],
    service: Service,
    response: Response,
) -> TenantStats:
    stats, status = await service.tenant_stats()
    response.headers[CACHE_HEADER] = status
    return stats
