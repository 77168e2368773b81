"""fastapi-users wiring: the user database on the tenant session and the user manager.

Access control is ours (backend.identity.permissions); fastapi-users supplies the user
manager: email lookup, password hashing and verification with rehash-on-login.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi_users import BaseUserManager, UUIDIDMixin, exceptions
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from backend.identity.models import User
from backend.identity.passwords import password_helper, submit
from backend.kit.deps import SessionDep


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: SQLAlchemyUserDatabase[User, uuid.UUID], secret: str) -> None:
        super().__init__(user_db, password_helper)
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret

    async def check_password(self, email: str, password: str) -> tuple[User | None, bool]:
        """(the user of ``email`` or None, whether ``password`` is theirs).

        The hash runs in the hashing pool (backend.identity.passwords). Unknown emails pay one hash
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

    async def verify_password(
        self,
        user: User | None,
        password: str,
        *,
        started: Callable[[], object] | None = None,
    ) -> tuple[User | None, bool]:
        """``check_password`` for a user already looked up (None: pay the dummy hash).

        ``started`` is called in the worker thread as the hash begins (see signin)."""
        stored = user.hashed_password if user is not None else None

        def work() -> tuple[bool, str | None]:
            if started is not None:
                started()
            if stored is None:
                self.password_helper.hash(password)
                return False, None
            return self.password_helper.verify_and_update(password, stored)

        verified, new_hash = await submit(work)
        if user is None:
            return None, False
        if verified and new_hash is not None and user.is_active:
            user.hashed_password = new_hash
        return user, verified


# Plain returns, not generators: nothing to clean up, and FastAPI runs a generator dependency
# through an exit stack, which every login would pay for.
async def get_user_db(session: SessionDep) -> SQLAlchemyUserDatabase[User, uuid.UUID]:
    return SQLAlchemyUserDatabase(session, User)


async def get_user_manager(
    request: Request,
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],
) -> UserManager:
    settings = request.app.state.resources.settings
    return UserManager(user_db, settings.secret_key.get_secret_value())


UserManagerDep = Annotated[UserManager, Depends(get_user_manager)]
