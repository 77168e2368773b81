"""The Celery app.

Run workers with `tenantflow worker` (every queue) or
`celery -A backend.workers.celery_app worker -Q <queues>` for a partition of its own.
"""

from __future__ import annotations

from celery import Celery

import backend.models  # noqa: F401  (every mapper configured before a job flushes)
from backend.config import Settings, get_settings
from backend.workers import broker, resources
from tenancy import keys
from tenancy.celery import TenantTask

TASK_MODULES = [
    "backend.platform.jobs",
    "backend.identity.jobs",
    "backend.notifications.jobs",
    "backend.events.jobs",
]


def create_celery(settings: Settings) -> Celery:
    app = Celery("tenantflow", broker=settings.redis_url, include=TASK_MODULES)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # On a lost broker connection, cancel running late-ack tasks: they cannot be acked
        # any more and come back anyway (handlers are idempotent through the inbox).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_default_queue=keys.PLATFORM_QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport=broker.PATH,  # kombu's Redis transport, repaired (see the module)
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            "sweep-deleting-tenants": {
                "task": "platform.sweep_deleting_tenants",
                "schedule": 300.0,
                "options": {"queue": keys.PLATFORM_QUEUE},
            },
        },
    )
    TenantTask.tenant_loader = staticmethod(resources.load_tenant)
    TenantTask.partitions = settings.queue_partitions
    return app


def worker_queues(settings: Settings, pinned: list[str] | None = None) -> list[str]:
    """Every queue a single all-in-one worker consumes."""
    queues = [keys.PLATFORM_QUEUE, *keys.all_partition_queues(settings.queue_partitions)]
    return queues + [keys.pinned_queue(p) for p in pinned or []]


celery_app = create_celery(get_settings())
