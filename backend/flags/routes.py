"""Tenant side of flags: every flag evaluated for the caller, and admins' overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from starlette.concurrency import run_in_threadpool

from backend.flags import service
from backend.flags.deps import context_of, store_of
from backend.flags.engine import Variant
from backend.flags.schemas import FlagsOut, FlagValue, OverrideIn, OverrideOut, VariantOut
from backend.identity.permissions import Principal, requires
from backend.kit.deps import CurrentTenant, ResourcesDep
from backend.kit.errors import problem_responses
from backend.kit.resources import Resources
from tenancy.registry import TenantRecord

router = APIRouter(prefix="/api/v1/flags", tags=["flags"])
AUTH_ERRORS = (400, 401, 403)
FlagName = Annotated[str, Path(min_length=1, max_length=200, description="The flag's name.")]


def _value(variant: Variant) -> FlagValue:
    payload = variant.payload.model_dump(include={"type", "value"}) if variant.payload else None
    return FlagValue(
        enabled=variant.feature_enabled,
        variant=VariantOut(name=variant.name, enabled=variant.enabled, payload=payload),
    )


@router.get(
    "",
    response_model=FlagsOut,
    responses=problem_responses(*AUTH_ERRORS),
    summary="Every flag, evaluated for the caller (user, tenant, plan, address)",
)
async def list_flags(
    request: Request, caller: Annotated[Principal, requires("flags:read")]
) -> FlagsOut:
    values = store_of(request).evaluate_all(context_of(request, caller))
    return FlagsOut(flags={name: _value(v) for name, v in sorted(values.items())})


async def _switch(
    res: Resources, tenant: TenantRecord, name: str, enabled: bool | None, caller: Principal
) -> None:
    """Set (or with None remove) the tenant's override; this process takes it at once."""
    actor = f"{caller.kind}:{caller.id}"
    await run_in_threadpool(
        service.set_override, res.sync_engine, res.sync_redis, tenant.id, name, enabled, actor=actor
    )
    res.flags.refresh_soon()


@router.put(
    "/{name}/override",
    response_model=OverrideOut,
    responses=problem_responses(*AUTH_ERRORS, 404, 409, 422),
    summary="Turn a tenant-overridable flag on or off for this whole tenant",
    description="404 `flag-not-found`; 409 `flag-not-overridable`: operators did not allow "
    "tenants to decide this flag. In effect on every API process within a second.",
)
async def put_override(
    name: FlagName,
    data: OverrideIn,
    tenant: CurrentTenant,
    res: ResourcesDep,
    caller: Annotated[Principal, requires("flags:override")],
) -> OverrideOut:
    await _switch(res, tenant, name, data.enabled, caller)
    return OverrideOut(name=name, enabled=data.enabled)


@router.delete(
    "/{name}/override",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH_ERRORS, 404, 409, 422),
    summary="Remove this tenant's override: the flag's own rules apply again",
)
async def delete_override(
    name: FlagName,
    tenant: CurrentTenant,
    res: ResourcesDep,
    caller: Annotated[Principal, requires("flags:override")],
) -> Response:
    await _switch(res, tenant, name, None, caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
