"""What other domains call to send mail."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from backend.notifications.jobs import redacted_kwargs, send_email
from backend.notifications.templates import validate_context, validate_recipient
from tenancy.context import TenantNotBound
from tenancy.registry import TenantRecord

log = logging.getLogger(__name__)


def queue_email(tenant: TenantRecord, to: str, template: str, context: dict[str, Any]) -> None:
    """Queue ``template`` for ``to`` on the tenant's queue; call it after your commit.

    Raises ValueError (``UnknownTemplate``, pydantic's ``ValidationError``) for an unknown
    template, a context that does not fit it, or a recipient that is not one bare address.
    """
    if tenant is None:
        # Explicit, never whatever happens to be bound: a mail goes out in one tenant's name.
        raise TenantNotBound("queue_email needs the tenant the mail is sent for")
    validate_recipient(to)
    payload = validate_context(template, context).model_dump(mode="json")
    mail_id = uuid.uuid4().hex
    send_email.apply_async(
        kwargs={"to": to, "template": template, "context": payload, "mail_id": mail_id},
        tenant=tenant,
        argsrepr="()",
        kwargsrepr=redacted_kwargs(template, mail_id),
    )
    log.info("email %s (%s) queued for tenant %s", mail_id, template, tenant.slug)
