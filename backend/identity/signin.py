"""Password sign-in: lockout check, account lookup, hash, and the session it starts.

A sign-in costs one argon2 verify (~20 ms of CPU, run in a worker thread) and should cost
little more. Whatever does not depend on the verdict runs while the hash does, on the event
loop's core: for an active account, the access token is signed and the session's first
refresh token is inserted with the audit event of the login (one statement, inside the
request's transaction). A good password then only needs the commit; a wrong one rolls the
transaction back, so nothing of it is ever seen.

Timing: both failures (unknown email, wrong password) do the same after the hash: roll back,
count the failure, record it, commit. An unknown email pays a dummy hash of the same cost, so
the response time does not tell which emails have accounts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity import audit, sessions
from backend.identity.manager import UserManager
from backend.identity.models import User
from backend.identity.tokens import TokenService
from backend.kit.errors import Problem
from backend.kit.throttle import LoginGuard, too_many_logins
from tenancy.registry import TenantRecord


@dataclass(frozen=True, slots=True)
class SignedIn:
    access_token: str
    refresh_token: str


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a sign-in needs besides the credentials."""

    db: AsyncSession
    manager: UserManager
    guard: LoginGuard
    tokens: TokenService
    tenant: TenantRecord
    request: Request
    refresh_lifetime: int


def _invalid_credentials() -> Problem:
    return Problem(
        401,
        "invalid-credentials",
        "Email or password is wrong.",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _prepare(ctx: SignIn, user: User) -> SignedIn:
    """The session of ``user`` as if the password were right: committed only if it is."""
    event = audit.event_row(
        "login.succeeded",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        request=ctx.request,
    )
    refresh = await sessions.start(ctx.db, user.id, lifetime=ctx.refresh_lifetime, event=event)
    access = ctx.tokens.issue(user_id=user.id, role=user.role, tenant=ctx.tenant)
    return SignedIn(access, refresh)


async def _start_hash(
    manager: UserManager, user: User | None, password: str
) -> asyncio.Future[tuple[bool, str | None]]:
    """The verify (or the dummy hash), once its worker thread is inside argon2.

    Waiting for that is what lets the hash and the loop's work overlap: a worker thread
    needs the GIL to reach argon2 (which then releases it), and the loop, busy with Python,
    would hand it over only at its next wait for I/O (or after the 5 ms switch interval)."""
    loop = asyncio.get_running_loop()
    began: asyncio.Future[None] = loop.create_future()

    def mark() -> None:
        if not began.done():
            began.set_result(None)

    hashing = manager.start_verify(user, password, started=lambda: loop.call_soon_threadsafe(mark))
    # Also done when the hash fails before it begins: never wait for a start that won't come.
    either: set[asyncio.Future[Any]] = {began, hashing}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    return hashing


async def sign_in(ctx: SignIn, email: str, password: str) -> SignedIn:
    """The tokens of a new session; 429 while locked out, 401 for wrong credentials."""
    # The account lookup (PostgreSQL, the longer chain: BEGIN, SELECT) and the lockout check
    # (Redis) run at once, the lookup first. Redis errors propagate: no counting means no
    # login (503), never an unthrottled one. A locked-out attempt is refused before the hash:
    # guessing must not buy CPU.
    found, wait = await asyncio.gather(ctx.manager.find(email), ctx.guard.check())
    if wait is not None:
        raise too_many_logins(wait)
    hashing = await _start_hash(ctx.manager, found, password)
    prepared: SignedIn | None = None
    try:
        if found is not None and found.is_active:
            prepared = await _prepare(ctx, found)
    finally:
        # Never leave the hash running behind an error of the speculative insert.
        verified, new_hash = await hashing
    if prepared is not None and ctx.manager.accept(found, verified, new_hash):
        await ctx.guard.succeed()
        return prepared  # the request's unit of work commits the session and its event
    user_id = found.id if found is not None else None  # the rollback expires the row
    await ctx.db.rollback()
    locked = await ctx.guard.fail()
    audit.record(
        ctx.db,
        "login.locked" if locked else "login.failed",
        actor_type="anonymous",
        target_type="user" if user_id else None,
        target_id=user_id,
        request=ctx.request,
        details={"email": email[:320], **({"locked_seconds": locked} if locked else {})},
    )
    # The refusal's event must stick although the request fails.
    await ctx.db.commit()
    raise _invalid_credentials()
