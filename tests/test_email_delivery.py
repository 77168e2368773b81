"""Mail through a real Celery worker to a real SMTP sink: content, retries, refusals, tenants."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

from backend.notifications.service import queue_email
from backend.workers.celery_app import celery_app
from tenancy import keys
from tests.conftest import RETRY_CAP
from tests.conftest import wait_until as _wait


def _invite(tenant: Any, token: str) -> dict[str, Any]:
    return {
        "tenant_name": tenant.record.name,
        "inviter_name": "Ada Admin",
        "role": "member",
        "accept_url": f"http://127.0.0.1:8000/invites/accept?token={token}",
        "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(days=3),
    }


def _lines(log: Path, *needles: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if all(n in line for n in needles)]


def test_invite_arrives_with_both_parts_for_its_tenant(worker, sink, make_tenant, settings):
    a = make_tenant("ml-a", name="Acme <Tools> & Co")
    b = make_tenant("ml-b", name="Beta Ltd")
    token_a, token_b = uuid.uuid4().hex, uuid.uuid4().hex
    to_a, to_b = f"new@{a.slug}.example.com", f"new@{b.slug}.example.com"
    queue_email(a.record, to_a, "invite", _invite(a, token_a))
    queue_email(b.record, to_b, "invite", _invite(b, token_b))

    [mail] = sink.wait_for(1, to=to_a)
    assert mail["Subject"] == "Ada Admin invited you to Acme <Tools> & Co on Tenantflow"
    assert mail["From"] == settings.smtp_from
    assert mail["X-Tenantflow-Tenant"] == a.slug and mail["X-Tenantflow-Template"] == "invite"
    assert mail["Message-ID"].endswith("@tenantflow.localhost>") and mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Acme <Tools> & Co" in text and token_a in text
    assert "Acme &lt;Tools&gt; &amp; Co" in html and "<Tools>" not in html and token_a in html
    assert token_b not in text + html and "Beta" not in text + html

    [other] = sink.wait_for(1, to=to_b)
    assert other["X-Tenantflow-Tenant"] == b.slug and "Beta Ltd" in other["Subject"]
    # The worker ran each task bound to its own tenant, from that tenant's partition queue.
    queue_a = keys.queue_for(a.id, settings.queue_partitions)
    queue_b = keys.queue_for(b.id, settings.queue_partitions)
    assert _wait(lambda: _lines(worker, "sent for tenant", f"{a.slug} from {queue_a}"))
    assert _lines(worker, "sent for tenant", f"{b.slug} from {queue_b}")
    # No link (token) and no recipient address in the worker's INFO log.
    log_text = worker.read_text()
    assert token_a not in log_text and token_b not in log_text and to_a not in log_text


def test_mail_queued_while_sink_is_down_arrives_when_it_is_back(worker, sink, make_tenant):
    tenant = make_tenant("ml-down")
    to = f"reset@{tenant.slug}.example.com"
    sink.stop()
    try:
        queue_email(
            tenant.record,
            to,
            "password_reset",
            {
                "tenant_name": tenant.record.name,
                "reset_url": "https://x.test/r?t=1",
                "expires_minutes": 30,
            },
        )
        assert _wait(lambda: _lines(worker, tenant.slug, "retry 2/"), 20), worker.read_text()
        assert sink.wait_for(1, timeout=0, to=to) == []
    finally:
        sink.start()
    [mail] = sink.wait_for(1, timeout=20, to=to)
    assert mail["Subject"] == f"Reset your {tenant.record.name} password"
    attempts = _lines(worker, tenant.slug, "failed (")
    assert attempts and all("ConnectionRefusedError" in line for line in attempts)
    time.sleep(RETRY_CAP + 0.5)
    assert len(sink.wait_for(2, timeout=0, to=to)) == 1  # delivered once, not once per retry


def test_permanent_refusal_is_logged_and_not_retried(worker, sink, make_tenant):
    tenant = make_tenant("ml-550")
    to = f"gone@{tenant.slug}.example.com"
    sink.reject.add(to)
    queue_email(tenant.record, to, "invite", _invite(tenant, "tok"))
    assert _wait(lambda: _lines(worker, tenant.slug, "refused permanently")), worker.read_text()
    [refusal] = _lines(worker, tenant.slug, "refused permanently")
    assert "550" in refusal and "ERROR" in refusal
    time.sleep(2 * RETRY_CAP + 1)  # longer than any retry would wait
    assert len(_lines(worker, tenant.slug, "refused permanently")) == 1
    assert _lines(worker, tenant.slug, "retry") == []
    assert sink.wait_for(1, timeout=0, to=to) == []


def test_mail_task_without_tenant_header_fails_in_worker(worker, sink, make_tenant, settings):
    tenant = make_tenant("ml-nohdr")
    to = f"x@{tenant.slug}.example.com"
    payload = {
        "to": to,
        "template": "invite",
        "context": {**_invite(tenant, "tok"), "expires_at": "2030-01-01T00:00:00Z"},
        "mail_id": uuid.uuid4().hex,
    }
    sent = celery_app.send_task(
        "notifications.send_email",
        kwargs=payload,
        queue=keys.queue_for(tenant.id, settings.queue_partitions),
    )
    assert _wait(lambda: f"{sent.id}] raised unexpected: TenantNotBound" in worker.read_text())
    assert sink.wait_for(1, timeout=0.5, to=to) == []
