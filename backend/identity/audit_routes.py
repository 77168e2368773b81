"""The tenant's security audit trail (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.identity import audit
from backend.identity.audit import AuditAction
from backend.identity.permissions import Principal, requires
from backend.identity.schemas import AuditEventRead
from backend.kit.deps import TenantDB
from backend.kit.errors import problem_responses
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEventRead],
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Security events, newest first (cursor paginated; filter by action)",
)
async def list_audit(
    _caller: Annotated[Principal, requires("audit:read")],
    db: TenantDB,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    action: Annotated[AuditAction | None, Query(description="Only events of this action.")] = None,
) -> Page[AuditEventRead]:
    rows, next_cursor = await audit.list_events(db, limit=limit, cursor=cursor, action=action)
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(e) for e in rows], next_cursor=next_cursor
    )
