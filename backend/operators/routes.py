"""POST /platform/v1/auth/login: operator email and password for a short-lived access token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.config import Settings
from backend.kit.deps import ResourcesDep, SharedDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.throttle import Policy, Throttle
from backend.operators.repository import OperatorRepository
from backend.operators.schemas import OperatorLogin, OperatorTokenOut
from backend.operators.service import OperatorService, normalize_email
from backend.operators.tokens import OperatorTokenService
from tenancy.keys import throttle_key

router = APIRouter(prefix="/platform/v1/auth", tags=["platform"])


def login_limits(settings: Settings, account_key: str, address_key: str) -> dict[str, Policy]:
    """Failure counters of one login attempt: the account's and the client address's."""

    def policy(max_failures: int) -> Policy:
        return Policy(
            max_failures=max_failures,
            lockout_seconds=settings.login_lockout_seconds,
            max_lockout_seconds=settings.login_max_lockout_seconds,
            # Remember failures well past the longest lock, or a locked account would start
            # afresh with max_failures free guesses each time its lock ended.
            forget_after_seconds=max(3600.0, 4 * settings.login_max_lockout_seconds),
        )

    return {
        account_key: policy(settings.login_max_failures),
        address_key: policy(settings.login_max_failures_per_address),
    }


@router.post(
    "/login",
    response_model=OperatorTokenOut,
    responses=problem_responses(401, 422, 429, 503),
    summary="Exchange an operator's email and password for a short-lived access token",
)
async def login(
    data: OperatorLogin, request: Request, res: ResourcesDep, session: SharedDB
) -> OperatorTokenOut:
    email = normalize_email(str(data.email))
    address = request.client.host if request.client else "unknown"
    account_key = throttle_key(None, "operator-login", "account", email)
    address_key = throttle_key(None, "operator-login", "address", address)
    limits = login_limits(res.settings, account_key, address_key)
    # Redis errors propagate: no counting means no login (503), never an unthrottled one.
    throttle = Throttle(res.redis)
    wait = await throttle.check(limits)
    if wait is not None:
        raise _too_many(wait)
    operator = await OperatorService(OperatorRepository(session)).authenticate(email, data.password)
    if operator is None:
        await throttle.fail(limits)
        raise Problem(
            401,
            "invalid-credentials",
            "Email or password is wrong, or the operator is deactivated.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Only the account: a valid login must not reset what was spent guessing other accounts.
    await throttle.clear([account_key])
    tokens: OperatorTokenService = request.app.state.operator_tokens
    return OperatorTokenOut(access_token=tokens.issue(operator.id), expires_in=tokens.lifetime)


def _too_many(wait: int) -> Problem:
    return Problem(
        429,
        "too-many-login-failures",
        f"Too many failed logins for this account or address; retry in {wait} s.",
        headers={"Retry-After": str(wait)},
        retry_after=wait,
    )
