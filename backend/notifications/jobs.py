"""The mail task: render a template for the bound tenant and send it, retrying what may pass."""

from __future__ import annotations

import logging
from typing import Any

from backend.config import get_settings
from backend.notifications import smtp
from backend.notifications.templates import build_message, render
from backend.workers import resources
from backend.workers.celery_app import celery_app
from tenancy import keys
from tenancy.celery import TenantTask
from tenancy.context import require_tenant

log = logging.getLogger(__name__)

#: A delivered mail is remembered this long, so a redelivered task does not send it again.
SENT_MARKER_TTL_SECONDS = 7 * 24 * 3600


def redacted_kwargs(template: str, mail_id: str) -> str:
    """What Celery shows for the task's kwargs (events, monitors): no recipient, no links."""
    return repr({"template": template, "mail_id": mail_id, "to": "<redacted>", "context": "..."})


@celery_app.task(base=TenantTask, name="notifications.send_email", bind=True, max_retries=None)
def send_email(self: Any, to: str, template: str, context: dict[str, Any], mail_id: str) -> None:
    """Render ``template`` with ``context`` and send it to ``to`` for the bound tenant."""
    tenant = require_tenant()
    settings = get_settings()
    sent_key = keys.tenant_key(tenant.id, "mail", "sent", mail_id)
    if resources.redis().exists(sent_key):
        log.info("email %s for tenant %s was already sent; skipped", mail_id, tenant.slug)
        return
    message = build_message(
        render(template, context),
        to=to,
        sender=settings.smtp_from,
        mail_id=mail_id,
        template=template,
        tenant_slug=tenant.slug,
    )
    try:
        smtp.deliver(message, settings)
    except smtp.SEND_ERRORS as exc:
        reason = smtp.describe(exc)
        if smtp.is_permanent(exc):
            log.error(
                "email %s (%s) for tenant %s refused permanently, not retried: %s",
                mail_id,
                template,
                tenant.slug,
                reason,
            )
            return
        retries = self.request.retries
        if retries >= settings.email_max_retries:
            log.error(
                "email %s (%s) for tenant %s not sent after %d attempts, giving up: %s",
                mail_id,
                template,
                tenant.slug,
                retries + 1,
                reason,
            )
            raise
        delay = smtp.backoff(
            retries, settings.email_retry_base_seconds, settings.email_retry_max_seconds
        )
        log.warning(
            "email %s (%s) for tenant %s failed (%s); retry %d/%d in %.1fs",
            mail_id,
            template,
            tenant.slug,
            reason,
            retries + 1,
            settings.email_max_retries,
            delay,
        )
        raise self.retry(
            exc=exc,
            countdown=delay,
            max_retries=settings.email_max_retries,
            argsrepr="()",
            kwargsrepr=redacted_kwargs(template, mail_id),
        ) from None
    resources.redis().set(sent_key, "1", ex=SENT_MARKER_TTL_SECONDS)
    queue = (self.request.delivery_info or {}).get("routing_key", "?")
    log.info("email %s (%s) sent for tenant %s from %s", mail_id, template, tenant.slug, queue)
