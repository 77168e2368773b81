"""Invites: a single-use Redis token (default 7 days) that lets one person join with a role."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.events import outbox
from backend.events.types import InviteRevoked, MemberInvited, MemberJoined
from backend.identity import audit
from backend.identity.models import User
from backend.identity.onetime import Busy, OneTimeTokens
from backend.identity.passwords import hash_password
from backend.identity.permissions import Principal, outranks
from backend.identity.schemas import InviteAccept, InviteCreate, InviteRead
from backend.identity.service import normalize_email
from backend.identity.users import COLS
from backend.kit.errors import Problem
from backend.notifications.service import queue_email
from tenancy.registry import TenantRecord


@dataclass(frozen=True, slots=True)
class Invites:
    tokens: OneTimeTokens
    settings: Settings

    async def create(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        data: InviteCreate,
        *,
        caller: Principal,
        request: Request,
    ) -> InviteRead:
        if outranks(data.role, caller.role):
            raise Problem(403, "role-too-high", f"A '{caller.role}' cannot invite a '{data.role}'.")
        email = normalize_email(str(data.email))
        exists = await session.scalar(select(COLS.id).where(COLS.email == email))
        if exists is not None:
            raise Problem(409, "user-exists", f"{email} already has an account here.")
        now = dt.datetime.now(dt.UTC)
        invite = InviteRead(
            id=uuid.uuid4(),
            email=email,
            role=data.role,
            invited_by=caller.user_id,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.invite_ttl_seconds),
        )
        token = await self.tokens.issue(
            tenant.id,
            invite.model_dump(mode="json", exclude_none=True),
            ttl=self.settings.invite_ttl_seconds,
            token_id=str(invite.id),
        )
        audit.record(
            session,
            "invite.sent",
            actor_type=caller.kind,
            actor_id=caller.id,
            target_type="invite",
            target_id=invite.id,
            request=request,
            details={"email": email, "role": data.role},
        )
        # Never the address or the token: every member can read the event log.
        outbox.record(session, MemberInvited(invite_id=invite.id, role=data.role))
        await session.commit()
        inviter = caller.user.name or caller.user.email if caller.user else "An administrator"
        queue_email(
            tenant,
            email,
            "invite",
            {
                "tenant_name": tenant.name,
                "inviter_name": inviter,
                "role": data.role,
                "accept_url": f"{self.settings.public_url}/invites/accept#token={token}",
                "expires_at": invite.expires_at,
            },
        )
        return invite

    @staticmethod
    async def _inviter_still_may(session: AsyncSession, data: dict[str, str]) -> bool:
        """An invite grants at most its inviter's current role, and nothing once the inviter
        is deactivated (invites made with an API key have no inviter and stand)."""
        inviter = data.get("invited_by")
        if not inviter:
            return True
        row = (
            await session.execute(
                select(COLS.role, COLS.is_active).where(COLS.id == uuid.UUID(inviter))
            )
        ).first()
        return row is not None and row.is_active and not outranks(data["role"], row.role)

    async def get(self, tenant: TenantRecord, invite_id: uuid.UUID) -> InviteRead:
        for invite in await self.list(tenant):
            if invite.id == invite_id:
                return invite
        raise Problem(404, "invite-not-found", f"No open invite {invite_id}.")

    async def list(self, tenant: TenantRecord) -> list[InviteRead]:
        rows = [InviteRead.model_validate(d) for d in await self.tokens.outstanding(tenant.id)]
        return sorted(rows, key=lambda i: i.created_at, reverse=True)

    async def revoke(
        self,
        session: AsyncSession,
        tenant: TenantRecord,
        invite_id: uuid.UUID,
        *,
        caller: Principal,
        request: Request,
    ) -> None:
        if not await self.tokens.revoke(tenant.id, str(invite_id)):
            raise Problem(404, "invite-not-found", f"No open invite {invite_id}.")
        audit.record(
            session,
            "invite.revoked",
            actor_type=caller.kind,
            actor_id=caller.id,
            target_type="invite",
            target_id=invite_id,
            request=request,
        )
        outbox.record(session, InviteRevoked(invite_id=invite_id))

    async def accept(
        self, session: AsyncSession, tenant: TenantRecord, data: InviteAccept, request: Request
    ) -> User | None:
        """The new user; None when the token is unknown, used or expired."""
        try:
            claim = await self.tokens.claim(tenant.id, data.token)
        except Busy as exc:
            raise Problem(409, "invite-in-use", "This invite is being accepted right now.") from exc
        if claim is None:
            return None
        if not await self._inviter_still_may(session, claim.data):
            await self.tokens.complete(claim)  # the invite died with its inviter's authority
            return None
        try:
            hashed = await hash_password(data.password)
            user = User(
                id=uuid.uuid4(),
                email=claim.data["email"],
                hashed_password=hashed,
                name=data.name,
                role=claim.data["role"],
                is_active=True,
                is_verified=True,  # the invite mail proved the address
            )
            session.add(user)
            audit.record(
                session,
                "invite.accepted",
                actor_id=user.id,
                target_type="invite",
                target_id=claim.data["id"],
                request=request,
                details={"email": user.email, "role": user.role},
            )
            # A public route: nobody is signed in, the new member is who acts.
            joined = outbox.EventContext(
                actor_type="user",
                actor_id=user.id,
                request_id=getattr(request.state, "request_id", None),
                trace=outbox.trace_context(request.headers),
            )
            with outbox.acting(joined):
                outbox.record(session, MemberJoined(user_id=user.id, role=user.role))
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            await self.tokens.complete(claim)  # the address has an account: the invite is moot
            raise Problem(409, "user-exists", "This address already has an account here.") from exc
        except BaseException:
            await self.tokens.release(claim)  # not lost to a database hiccup
            raise
        await self.tokens.complete(claim)
        await session.refresh(user)
        return user
