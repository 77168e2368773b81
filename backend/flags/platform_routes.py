"""Operators' side of flags (/platform/v1): definitions as Unleash feature JSON, segments,
and the audit history. A kill switch is a PUT with ``"enabled": false``: in effect on every
process within a second."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from backend.flags import service
from backend.flags.schemas import AuditEntry, FeatureIn, SegmentIn, flag_out, tenant_overridable
from backend.kit.deps import ResourcesDep
from backend.kit.errors import Problem, problem_responses
from backend.platform.deps import Operator

router = APIRouter(prefix="/platform/v1", tags=["platform"])
FlagName = Annotated[str, Path(min_length=1, max_length=200, description="The flag's name.")]
SegmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The segment's id.")]

# Plain `def` like the other platform routes: the writes are synchronous.


@router.get(
    "/flags",
    responses=problem_responses(401),
    summary="List every flag (Unleash feature JSON, with tenantOverridable)",
)
def list_flags(_op: Operator, res: ResourcesDep) -> list[dict[str, Any]]:
    return [flag_out(r) for r in service.list_flags(res.sync_engine)]


@router.get(
    "/flags/{name}",
    responses=problem_responses(401, 404, 422),
    summary="Get a flag",
)
def get_flag(name: FlagName, _op: Operator, res: ResourcesDep) -> dict[str, Any]:
    return flag_out(service.get_flag(res.sync_engine, name))


@router.put(
    "/flags/{name}",
    responses={
        **problem_responses(400, 401, 422),
        201: {"description": "Created"},
    },
    summary="Create or replace a flag (Unleash feature JSON; 201 when created)",
    description="The body is an Unleash feature: `enabled`, `strategies` (with `constraints`, "
    "`segments`, `variants`), `variants`, `dependencies`. `tenantOverridable: true` lets "
    "tenant admins turn it on or off for their tenant. 422 for an unknown strategy or "
    "operator, a bad regex, number, date, version or IP range, bad variant weights, or a "
    "segment that does not exist. In effect on every process within a second.",
)
def put_flag(
    name: FlagName, feature: FeatureIn, op: Operator, res: ResourcesDep, response: Response
) -> dict[str, Any]:
    if feature.name != name:
        raise Problem(
            422, "name-mismatch", f"The body's name '{feature.name}' is not the path's '{name}'."
        )
    row, created = service.put_flag(
        res.sync_engine,
        res.sync_redis,
        feature,
        overridable=tenant_overridable(feature),
        actor=op.actor,
    )
    res.flags.refresh_soon()
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/platform/v1/flags/{name}"
    return flag_out(row)


@router.delete(
    "/flags/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 422),
    summary="Delete a flag (it evaluates as off everywhere within a second)",
)
def delete_flag(name: FlagName, op: Operator, res: ResourcesDep) -> Response:
    service.delete_flag(res.sync_engine, res.sync_redis, name, actor=op.actor)
    res.flags.refresh_soon()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/flags/{name}/history",
    response_model=list[AuditEntry],
    responses=problem_responses(401, 404, 422),
    summary="Changes of a flag and of tenants' overrides of it, newest first",
)
def flag_history(
    name: FlagName,
    _op: Operator,
    res: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    rows = service.history(res.sync_engine, ("flag", "override"), name, limit)
    if not rows:
        raise Problem(404, "flag-not-found", f"No flag '{name}' ever existed.")
    return [AuditEntry.model_validate(r) for r in rows]


@router.get(
    "/segments",
    responses=problem_responses(401),
    summary="List segments (Unleash segment JSON)",
)
def list_segments(_op: Operator, res: ResourcesDep) -> list[dict[str, Any]]:
    return [r["definition"] for r in service.list_segments(res.sync_engine)]


@router.get(
    "/segments/{segment_id}",
    responses=problem_responses(401, 404, 422),
    summary="Get a segment",
)
def get_segment(segment_id: SegmentId, _op: Operator, res: ResourcesDep) -> dict[str, Any]:
    return service.get_segment(res.sync_engine, segment_id)["definition"]  # type: ignore[no-any-return]


@router.put(
    "/segments/{segment_id}",
    responses={**problem_responses(400, 401, 422), 201: {"description": "Created"}},
    summary="Create or replace a segment (constraints shared by strategies)",
)
def put_segment(
    segment_id: SegmentId, segment: SegmentIn, op: Operator, res: ResourcesDep, response: Response
) -> dict[str, Any]:
    if segment.id != segment_id:
        raise Problem(
            422, "id-mismatch", f"The body's id {segment.id} is not the path's {segment_id}."
        )
    row, created = service.put_segment(res.sync_engine, res.sync_redis, segment, actor=op.actor)
    res.flags.refresh_soon()
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/platform/v1/segments/{segment_id}"
    return row["definition"]  # type: ignore[no-any-return]


@router.delete(
    "/segments/{segment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 409, 422),
    summary="Delete a segment (409 while a flag uses it)",
)
def delete_segment(segment_id: SegmentId, op: Operator, res: ResourcesDep) -> Response:
    service.delete_segment(res.sync_engine, res.sync_redis, segment_id, actor=op.actor)
    res.flags.refresh_soon()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/segments/{segment_id}/history",
    response_model=list[AuditEntry],
    responses=problem_responses(401, 404, 422),
    summary="Changes of a segment, newest first",
)
def segment_history(
    segment_id: SegmentId,
    _op: Operator,
    res: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    rows = service.history(res.sync_engine, ("segment",), str(segment_id), limit)
    if not rows:
        raise Problem(404, "segment-not-found", f"No segment {segment_id} ever existed.")
    return [AuditEntry.model_validate(r) for r in rows]
