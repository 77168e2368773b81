"""fastapi-users wiring: the user database on the tenant session and the user manager.

Access control is ours (backend.identity.permissions); fastapi-users supplies the user
manager: email lookup, password hashing and verification with rehash-on-login.
"""

from __future__ import annotations

import asyncio
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

    async def find(self, email: str) -> User | None:
        try:
            return await self.get_by_email(email)
        except exceptions.UserNotExists:
            return None

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
