"""POST /platform/v1/auth/login: operator email and password for a short-lived access token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.kit.deps import ResourcesDep, SharedDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.throttle import LoginGuard, too_many_logins
from backend.operators.repository import OperatorRepository
from backend.operators.schemas import OperatorLogin, OperatorTokenOut
from backend.operators.service import OperatorService, normalize_email
from backend.operators.tokens import OperatorTokenService

router = APIRouter(prefix="/platform/v1/auth", tags=["platform"])


@router.post(
    "/login",
    response_model=OperatorTokenOut,
    responses=problem_responses(400, 401, 422, 429, 503),
    summary="Exchange an operator's email and password for a short-lived access token",
)
async def login(
    data: OperatorLogin, request: Request, res: ResourcesDep, session: SharedDB
) -> OperatorTokenOut:
    email = normalize_email(str(data.email))
    address = request.client.host if request.client else "unknown"
    guard = LoginGuard(
        res.redis,
        res.settings,
        tenant_id=None,
        action="operator-login",
        account=email,
        address=address,
    )
    # Redis errors propagate: no counting means no login (503), never an unthrottled one.
    wait = await guard.check()
    if wait is not None:
        raise too_many_logins(wait)
    operator = await OperatorService(OperatorRepository(session)).authenticate(email, data.password)
    if operator is None:
        await guard.fail()
        raise Problem(
            401,
            "invalid-credentials",
            "Email or password is wrong, or the operator is deactivated.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Only the account: a valid login must not reset what was spent guessing other accounts.
    await guard.succeed()
    tokens: OperatorTokenService = request.app.state.operator_tokens
    return OperatorTokenOut(access_token=tokens.issue(operator.id), expires_in=tokens.lifetime)
