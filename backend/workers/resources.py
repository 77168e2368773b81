"""Per-process connections of a worker (made lazily, after prefork)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis as redis_sync
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.config import get_settings
from backend.kit.db import make_engine
from tenancy import registry
from tenancy.db import sync_tenant_session
from tenancy.registry import TenantRecord

_engine: tuple[int, Engine] | None = None
_redis: tuple[int, redis_sync.Redis] | None = None


def engine() -> Engine:
    global _engine
    if _engine is None or _engine[0] != os.getpid():
        _engine = (
            os.getpid(),
            make_engine(get_settings().database_url, pool_size=2, max_overflow=2),
        )
    return _engine[1]


def redis() -> redis_sync.Redis:
    global _redis
    if _redis is None or _redis[0] != os.getpid():
        _redis = (os.getpid(), redis_sync.Redis.from_url(get_settings().redis_url))
    return _redis[1]


def load_tenant(tenant_id: uuid.UUID) -> TenantRecord | None:
    with engine().connect() as conn:
        return registry.get_by_id(conn, tenant_id)


@contextmanager
def shared_session() -> Iterator[Session]:
    """A unit of work on the shared schema only, committed on success."""
    with Session(engine(), expire_on_commit=False) as session:
        yield session
        session.commit()


@contextmanager
def tenant_job_session() -> Iterator[Session]:
    """The job boundary's unit of work: a session of the bound tenant, committed on success."""
    with sync_tenant_session(engine()) as session:
        yield session
        session.commit()
