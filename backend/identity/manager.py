"""fastapi-users wiring: the user database on the tenant session and the user manager.

Access control is ours (backend.identity.permissions); fastapi-users supplies the user
manager: email lookup, password hashing and verification with rehash-on-login.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi_users import BaseUserManager, UUIDIDMixin, exceptions
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from backend.identity.models import User
from backend.kit.deps import SessionDep

# OWASP password-storage cheat sheet: argon2id with m=19 MiB, t=2, p=1. A stronger setting
# costs every login and tenant creation proportionally (64 MiB/t=3 measured ~220 ms here).
# Legacy hashes still verify and are replaced on the next good login (verify_and_update):
# bcrypt (imported accounts) and argon2 at other parameters (raising these later is safe).
password_helper = PasswordHelper(
    PasswordHash(
        (Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1), BcryptHasher(rounds=12))
    )
)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: SQLAlchemyUserDatabase[User, uuid.UUID], secret: str) -> None:
        super().__init__(user_db, password_helper)
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret

    async def check_password(self, email: str, password: str) -> tuple[User | None, bool]:
        """(the user of ``email`` or None, whether ``password`` is theirs).

        Hashing costs tens of milliseconds of CPU, so it runs off the event loop (in the loop
        it would stall every other request of the process). Unknown emails still pay one hash
        (no timing oracle). An upgraded hash is set on the row of an active user, for the
        request's unit of work to commit; a failed login changes no row (its route commits the
        audit event in the same session).
        """
        return await self.verify_password(await self.find(email), password)

    async def find(self, email: str) -> User | None:
        try:
            return await self.get_by_email(email)
        except exceptions.UserNotExists:
            return None

    async def verify_password(self, user: User | None, password: str) -> tuple[User | None, bool]:
        """``check_password`` for a user already looked up (None: pay the dummy hash)."""
        if user is None:
            await anyio.to_thread.run_sync(self.password_helper.hash, password)
            return None, False
        verified, new_hash = await anyio.to_thread.run_sync(
            self.password_helper.verify_and_update, password, user.hashed_password
        )
        if verified and new_hash is not None and user.is_active:
            user.hashed_password = new_hash
        return user, verified


async def get_user_db(
    session: SessionDep,
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_user_manager(
    request: Request,
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    settings = request.app.state.resources.settings
    yield UserManager(user_db, settings.secret_key.get_secret_value())


UserManagerDep = Annotated[UserManager, Depends(get_user_manager)]
