"""Forgot-password and reset-password."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request, Response, status

from backend.config import Settings
from backend.identity import resets
from backend.identity.audit import client_ip
from backend.identity.jobs import send_password_reset
from backend.identity.onetime import OneTimeTokens
from backend.identity.permissions import public
from backend.identity.schemas import Accepted, ForgotPassword, ResetPassword
from backend.identity.service import normalize_email
from backend.kit.deps import CurrentTenant, ResourcesDep, TenantDB
from backend.kit.errors import Problem, problem_responses
from backend.kit.throttle import Policy, Throttle, too_many
from tenancy.keys import throttle_key
from tenancy.registry import TenantRecord

router = APIRouter(prefix="/api/v1/auth", tags=["identity"])
HOUR = 3600.0
FORGOT_ACCEPTED = "If the address belongs to an account here, a reset link is on its way."


def token_limits(
    settings: Settings, tenant: TenantRecord, action: str, ip: str
) -> dict[str, Policy]:
    """Bad-token counter of a client address (invite accept, reset): guessing is refused."""
    policy = Policy(
        max_failures=settings.token_max_failures_per_address,
        lockout_seconds=settings.login_lockout_seconds,
        max_lockout_seconds=settings.login_max_lockout_seconds,
        forget_after_seconds=HOUR,
    )
    return {throttle_key(tenant.id, action, "address", ip): policy}


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(400, 404, 422, 429),
    summary="Mail a reset link (202 whether or not the address has an account)",
    dependencies=[public()],
)
async def forgot_password(
    request: Request, body: ForgotPassword, tenant: CurrentTenant, resources: ResourcesDep
) -> Accepted:
    settings = resources.settings
    email = normalize_email(str(body.email))
    per_account = settings.forgot_password_max_per_account

    def policy(limit: int) -> Policy:
        return Policy(
            limit, lockout_seconds=HOUR, max_lockout_seconds=HOUR, forget_after_seconds=HOUR
        )

    # Every request counts (not only failures): this endpoint sends mail. The counters do not
    # depend on whether the account exists, so a 429 tells nothing either.
    limits = {
        throttle_key(tenant.id, "forgot", "account", email): policy(per_account),
        throttle_key(tenant.id, "forgot", "address", client_ip(request) or "unknown"): policy(
            4 * per_account
        ),
    }
    throttle = Throttle(resources.redis)
    if (wait := await throttle.check(limits)) is not None:
        raise too_many(wait, "reset requests for this account or address")
    await throttle.fail(limits)
    await anyio.to_thread.run_sync(
        lambda: send_password_reset.apply_async(
            kwargs={"email": email}, tenant=tenant, argsrepr="()", kwargsrepr="{'email': '…'}"
        )
    )
    return Accepted(detail=FORGOT_ACCEPTED)


@router.post(
    "/reset-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 422, 429),
    summary="Set a new password with the token of a reset link (ends every session)",
    dependencies=[public()],
)
async def reset_password(
    request: Request,
    body: ResetPassword,
    tenant: CurrentTenant,
    resources: ResourcesDep,
    db: TenantDB,
) -> Response:
    limits = token_limits(resources.settings, tenant, "reset", client_ip(request) or "unknown")
    throttle = Throttle(resources.redis)
    if (wait := await throttle.check(limits)) is not None:
        raise too_many(wait, "bad reset tokens from this address")
    user = await resets.reset_password(
        db,
        OneTimeTokens(resources.redis, "reset"),
        throttle,
        tenant,
        body.token,
        body.password,
        request,
    )
    if user is None:
        await throttle.fail(limits)
        raise Problem(
            400,
            "invalid-reset-token",
            "The reset link is unknown, expired or already used; ask for a new one.",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
