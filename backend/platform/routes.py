from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from backend.kit.deps import ResourcesDep
from backend.kit.errors import problem_responses
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.kit.text import FreeText
from backend.platform import service
from backend.platform.deps import Operator
from backend.platform.schemas import TenantCreate, TenantOut, TenantUpdate

router = APIRouter(prefix="/platform/v1", tags=["platform"])
Slug = Annotated[FreeText, Path(description="The tenant's slug.")]

# Platform routes are plain `def`: provisioning is synchronous and runs in the threadpool.


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantOut,
    responses=problem_responses(400, 401, 409, 422),
    summary="Create a tenant with its schema and owner account",
)
def create_tenant(
    data: TenantCreate, _op: Operator, res: ResourcesDep, response: Response
) -> TenantOut:
    record = service.create_tenant(
        res.sync_engine,
        res.sync_redis,
        slug=data.slug,
        name=data.name,
        plan=data.plan,
        owner_email=str(data.owner_email),
        owner_password=data.owner_password,
    )
    response.headers["Location"] = f"/platform/v1/tenants/{record.slug}"
    return TenantOut.model_validate(record)


@router.get(
    "/tenants",
    response_model=Page[TenantOut],
    responses=problem_responses(401, 422),
    summary="List tenants (cursor paginated, oldest first)",
)
def list_tenants(
    _op: Operator,
    res: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: Literal["active", "suspended", "deleting"] | None = None,
) -> Page[TenantOut]:
    rows, next_cursor = service.list_tenants(
        res.sync_engine, limit=limit, cursor=cursor, status=status
    )
    return Page[TenantOut](
        items=[TenantOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/tenants/{slug}",
    response_model=TenantOut,
    responses=problem_responses(401, 404, 422),
    summary="Get a tenant",
)
def get_tenant(slug: Slug, _op: Operator, res: ResourcesDep) -> TenantOut:
    return TenantOut.model_validate(service.get_tenant(res.sync_engine, slug))


@router.patch(
    "/tenants/{slug}",
    response_model=TenantOut,
    responses=problem_responses(400, 401, 404, 422, 503),
    summary="Rename, change plan, suspend or resume a tenant",
    description="503 `cache-invalidation-failed`: the change is stored in PostgreSQL, but Redis "
    "could not be reached, so caches may serve the old row for up to the registry cache TTL.",
)
def update_tenant(slug: Slug, data: TenantUpdate, _op: Operator, res: ResourcesDep) -> TenantOut:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    record = service.update_tenant(
        res.sync_engine,
        res.sync_redis,
        slug,
        changes,
        stale_seconds=res.settings.registry_max_staleness_seconds,
    )
    res.registry.forget(record.slug, str(record.id))
    return TenantOut.model_validate(record)


@router.delete(
    "/tenants/{slug}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TenantOut,
    responses=problem_responses(401, 404, 422, 503),
    summary="Delete a tenant: refused from now on, schema dropped by a background job",
    description="503 `cache-invalidation-failed`: the tenant is marked deleting in PostgreSQL, "
    "but Redis could not be reached, so caches may serve it for up to the registry cache TTL; "
    "the schema is then dropped by the periodic sweep.",
)
def delete_tenant(slug: Slug, _op: Operator, res: ResourcesDep) -> TenantOut:
    record = service.delete_tenant(
        res.sync_engine,
        res.sync_redis,
        slug,
        stale_seconds=res.settings.registry_max_staleness_seconds,
    )
    res.registry.forget(record.slug, str(record.id))
    return TenantOut.model_validate(record)
