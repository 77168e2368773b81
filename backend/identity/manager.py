"""fastapi-users wiring: the user database on the tenant session and the user manager.

Access control is ours (backend.identity.permissions); fastapi-users supplies the user
manager: email lookup, password hashing and verification with rehash-on-login.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from fastapi_users import BaseUserManager, UUIDIDMixin
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.identity.models import User
from backend.identity.passwords import password_helper, submit

# fastapi-users' get_by_email builds its statement (two func.lower calls) and that statement's
# cache key on every call, on the login's critical path (before the hash can start). Built
# once, the statement's cache key is memoized; the query is the same (the unique index on
# lower(email) answers it).
_BY_EMAIL = select(User).where(func.lower(User.email) == func.lower(bindparam("email")))


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: SQLAlchemyUserDatabase[User, uuid.UUID], secret: str) -> None:
        super().__init__(user_db, password_helper)
        self.session: AsyncSession = user_db.session
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret

    async def find(self, email: str) -> User | None:
        """The user with this email (case-insensitive), or None."""
        found: User | None = (await self.session.scalars(_BY_EMAIL, {"email": email})).first()
        return found

    def start_verify(
        self,
        user: User | None,
        password: str,
        *,
        started: Callable[[], object] | None = None,
    ) -> asyncio.Future[tuple[bool, str | None]]:
        """(whether ``password`` is ``user``'s, a new hash if theirs is outdated), computed in
        the hashing pool (backend.identity.passwords), submitted at once.

        For no user (an unknown email) a dummy hash of the same cost is computed: the time
        tells nothing about which emails have accounts. ``started`` is called in the worker
        thread as the hash begins (see backend.identity.signin)."""
        stored = user.hashed_password if user is not None else None

        def work() -> tuple[bool, str | None]:
            if started is not None:
                started()
            if stored is None:
                self.password_helper.hash(password)
                return False, None
            return self.password_helper.verify_and_update(password, stored)

        return submit(work)

    @staticmethod
    def accept(user: User | None, verified: bool, new_hash: str | None) -> bool:
        """Whether ``user`` signs in; an outdated hash of theirs is replaced on the row (the
        request's unit of work commits it with the login)."""
        if user is None or not verified or not user.is_active:
            return False
        if new_hash is not None:
            user.hashed_password = new_hash
        return True


def user_manager(session: AsyncSession, settings: Settings) -> UserManager:
    """The user manager on a tenant session."""
    secret = settings.secret_key.get_secret_value()
    return UserManager(SQLAlchemyUserDatabase(session, User), secret)
