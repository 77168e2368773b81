"""/platform/v1/dead-letters: operators list, inspect and replay the events handlers gave up on."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy.orm import Session

from backend.events import deadletters
from backend.events.schemas import DeadLetterOut
from backend.kit.deps import ResourcesDep
from backend.kit.errors import problem_responses
from backend.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.kit.text import FreeText
from backend.platform.deps import Operator

router = APIRouter(prefix="/platform/v1/dead-letters", tags=["platform"])
LetterId = Annotated[uuid.UUID, Path(description="The dead letter's id.")]

# Plain `def` like the other platform routes: the shared-schema work and the broker send are
# synchronous and run in the threadpool; each route's `session.begin()` is its transaction.


@router.get(
    "",
    response_model=Page[DeadLetterOut],
    responses=problem_responses(401, 404, 422),
    summary="List dead letters (cursor paginated, newest first)",
    description="404 `tenant-not-found`: the `tenant` filter names no tenant.",
)
def list_dead_letters(
    _op: Operator,
    res: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    tenant: Annotated[
        FreeText | None, Query(max_length=40, description="Only this tenant's (its slug).")
    ] = None,
    event_type: Annotated[
        FreeText | None,
        Query(alias="type", max_length=64, description="Only events of this type."),
    ] = None,
) -> Page[DeadLetterOut]:
    with Session(res.sync_engine) as session, session.begin():
        views, next_cursor = deadletters.list_dead_letters(
            session, limit=limit, cursor=cursor, tenant=tenant, event_type=event_type
        )
    return Page[DeadLetterOut](
        items=[DeadLetterOut.model_validate(v) for v in views], next_cursor=next_cursor
    )


@router.get(
    "/{dead_letter_id}",
    response_model=DeadLetterOut,
    responses=problem_responses(401, 404, 422),
    summary="Get a dead letter",
)
def get_dead_letter(dead_letter_id: LetterId, _op: Operator, res: ResourcesDep) -> DeadLetterOut:
    with Session(res.sync_engine) as session, session.begin():
        view = deadletters.get_dead_letter(session, dead_letter_id)
    return DeadLetterOut.model_validate(view)


@router.post(
    "/{dead_letter_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeadLetterOut,
    responses=problem_responses(401, 404, 409, 422, 503),
    summary="Send a dead letter's event to its handler again",
    description="Queues the (event, handler) message on the tenant's queue and sets "
    "`replayed_at`; the handler's inbox makes this safe (a handled event is skipped). "
    "409 `already-replayed` unless `force=true`; 409 `tenant-not-active` for a suspended or "
    "deleting tenant; 503 `broker-unavailable`: nothing was sent.",
)
def replay_dead_letter(
    dead_letter_id: LetterId,
    _op: Operator,
    res: ResourcesDep,
    force: Annotated[bool, Query(description="Replay even if it was replayed before.")] = False,
) -> DeadLetterOut:
    with Session(res.sync_engine, expire_on_commit=False) as session, session.begin():
        view = deadletters.replay_dead_letter(session, dead_letter_id, force=force)
    return DeadLetterOut.model_validate(view)
