"""Tasks the test worker loads (``-I tests.celery_tasks``) to observe the tenant hand-off."""

from __future__ import annotations

import uuid
from typing import Any

from backend.projects.models import Project
from backend.workers.celery_app import celery_app
from backend.workers.resources import tenant_job_session
from tenancy.celery import TenantTask
from tenancy.context import require_tenant


@celery_app.task(base=TenantTask, name="tests.write_canary", bind=True)
def write_canary(self: Any, label: str) -> None:
    tenant = require_tenant()
    queue = (self.request.delivery_info or {}).get("routing_key", "?")
    with tenant_job_session() as session:
        key = "C" + uuid.uuid4().hex[:8].upper()
        session.add(Project(name=f"{label}|{tenant.slug}|{queue}", key=key))
