"""Identity use cases that run outside a request (tenant creation seeds the owner)."""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from backend.identity.models import User
from backend.identity.passwords import password_helper
from tenancy.db import translate_map
from tenancy.registry import TenantRecord


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    """argon2id hash (OWASP parameters); costs tens of ms of CPU, so never inside a transaction."""
    return password_helper.hash(password)


def seed_owner(
    conn: Connection, tenant: TenantRecord, email: str, hashed_password: str, name: str = ""
) -> uuid.UUID:
    """Create the tenant's owner inside the provisioning transaction (password pre-hashed)."""
    user_id = uuid.uuid4()
    bound = conn.execution_options(schema_translate_map=translate_map(tenant.schema_name))
    bound.execute(
        insert(User).values(
            id=user_id,
            email=normalize_email(email),
            hashed_password=hashed_password,
            name=name,
            role="owner",
            is_active=True,
            is_verified=True,
        )
    )
    return user_id
