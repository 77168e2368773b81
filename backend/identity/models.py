"""Users live in each tenant's schema; fastapi-users' columns plus name and role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID
from sqlalchemy import CheckConstraint, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import TenantBase, TimestampMixin

ROLES = ("owner", "admin", "member", "viewer")


class User(SQLAlchemyBaseUserTableUUID, TimestampMixin, TenantBase):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
        Index("ix_users_email_lower", func.lower(text("email")), unique=True),
    )

    # fastapi-users declares email with a plain unique index; lookups use lower(email).
    if TYPE_CHECKING:
        email: str
    else:
        email: Mapped[str] = mapped_column(String(320), nullable=False)

    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="member")
