"""Identity jobs (tenant tasks): the password-reset mail."""

from __future__ import annotations

import logging
import uuid

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from backend.config import get_settings
from backend.identity import audit
from backend.identity.onetime import queue_issue
from backend.identity.resets import fingerprint, reset_url
from backend.identity.users import COLS
from backend.notifications.service import queue_email
from backend.workers import resources
from backend.workers.celery_app import celery_app
from tenancy.celery import TenantTask
from tenancy.context import require_tenant

log = logging.getLogger(__name__)


@celery_app.task(
    name="identity.send_password_reset",
    base=TenantTask,
    max_retries=5,
    autoretry_for=(DBAPIError, RedisError),
    retry_backoff=True,
    retry_jitter=True,
)
def send_password_reset(email: str) -> bool:
    """Store a reset token and mail its link, if ``email`` is an active user of the tenant."""
    tenant = require_tenant()
    settings = get_settings()
    with resources.tenant_job_session() as session:
        row = session.execute(
            select(COLS.id, COLS.hashed_password, COLS.is_active).where(COLS.email == email)
        ).first()
        if row is not None and row.is_active:
            session.add(
                audit.event(
                    "password.reset_requested",
                    actor_type="anonymous",
                    target_type="user",
                    target_id=row.id,
                )
            )
    if row is None or not row.is_active:
        log.info("password reset for tenant %s: no active account, nothing sent", tenant.slug)
        return False
    with resources.redis().pipeline(transaction=True) as pipe:
        token = queue_issue(
            pipe,
            "reset",
            tenant.id,
            {"user_id": str(row.id), "fingerprint": fingerprint(row.hashed_password)},
            ttl=settings.reset_ttl_seconds,
            token_id=str(uuid.uuid4()),
        )
        pipe.execute()
    queue_email(
        tenant,
        email,
        "password_reset",
        {
            "tenant_name": tenant.name,
            "reset_url": reset_url(settings, token),
            "expires_minutes": settings.reset_ttl_seconds // 60,
        },
    )
    log.info("password reset for tenant %s: link sent", tenant.slug)
    return True
