"""Platform jobs: no tenant header, they act on the registry."""

from __future__ import annotations

import logging
import uuid

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from backend.platform import service
from backend.workers import resources
from backend.workers.celery_app import celery_app
from tenancy import provisioning

log = logging.getLogger(__name__)


@celery_app.task(
    name="platform.drop_tenant_schema",
    bind=True,
    max_retries=10,
    autoretry_for=(DBAPIError, RedisError),
    retry_backoff=True,
    retry_jitter=True,
)
def drop_tenant_schema(self: object, tenant_id: str) -> bool:
    """Drop the schema and registry row of a tenant marked deleting (idempotent)."""
    dropped = provisioning.drop_tenant(resources.engine(), uuid.UUID(tenant_id), resources.redis())
    log.info("tenant %s dropped=%s", tenant_id, dropped)
    return dropped


@celery_app.task(name="platform.sweep_deleting_tenants")
def sweep_deleting_tenants(older_than_seconds: int = 600) -> int:
    """Re-queue the drop of tenants stuck in 'deleting' (a lost message, a worker that died).

    Also the drop of a tenant whose cache invalidation failed: ``older_than_seconds`` must stay
    well above the registry cache TTL, so no process still serves it from a stale copy.
    """
    ids = service.tenants_stuck_deleting(resources.engine(), older_than_seconds)
    for tenant_id in ids:
        drop_tenant_schema.delay(str(tenant_id))
    return len(ids)
