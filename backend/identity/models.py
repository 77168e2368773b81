"""Users live in each tenant's schema; fastapi-users' columns plus name and role."""

from __future__ import annotations

from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID
from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.db import TenantBase, TimestampMixin

ROLES = ("owner", "admin", "member", "viewer")


class User(SQLAlchemyBaseUserTableUUID, TimestampMixin, TenantBase):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="member")
