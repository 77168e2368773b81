"""Mail templates, validation, routing, SMTP error classes, the sink and `tenantflow mail`.

No worker here: see tests/test_email_delivery.py for delivery through a real worker.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from celery import Task
from pydantic import ValidationError

from backend.config import get_settings
from backend.devserver import start_mail_sink
from backend.notifications import smtp
from backend.notifications.service import queue_email
from backend.notifications.sink import MailSink
from backend.notifications.templates import (
    UnknownTemplate,
    build_message,
    render,
    validate_recipient,
)
from tenancy import keys
from tenancy.celery import HEADER
from tenancy.context import TenantNotBound
from tenancy.registry import TenantRecord

EXPIRES = dt.datetime(2030, 1, 2, 15, 4, tzinfo=dt.UTC)
TOKEN_URL = "https://app.example.com/invites/accept?token=SECRET-TOKEN-123&x=1"


def invite(**overrides: Any) -> dict[str, Any]:
    base = {
        "tenant_name": "Acme",
        "inviter_name": "Ada",
        "role": "member",
        "accept_url": TOKEN_URL,
        "expires_at": EXPIRES,
    }
    return {**base, **overrides}


def reset(**overrides: Any) -> dict[str, Any]:
    base = {"tenant_name": "Acme", "reset_url": TOKEN_URL, "expires_minutes": 30}
    return {**base, **overrides}


def record(queue: str | None = None) -> TenantRecord:
    return TenantRecord(
        id=uuid.uuid4(),
        slug="acme",
        name="Acme",
        schema_name="t_acme",
        plan="free",
        status="active",
        schema_revision=None,
        database_key="default",
        queue=queue,
        created_at=EXPIRES,
    )


def test_invite_renders_every_context_value() -> None:
    out = render("invite", invite())
    assert out.subject == "Ada invited you to Acme on Tenantflow"
    for part in (out.text, out.html):
        assert "Ada" in part and "Acme" in part and "member" in part
        assert "2030-01-02 15:04 UTC" in part
    assert TOKEN_URL in out.text
    assert TOKEN_URL.replace("&", "&amp;") in out.html


def test_password_reset_renders_every_context_value() -> None:
    out = render("password_reset", reset(expires_minutes=45))
    assert out.subject == "Reset your Acme password"
    assert "45 minutes" in out.text and "45 minutes" in out.html
    assert TOKEN_URL in out.text


def test_html_part_escapes_names_text_part_keeps_them() -> None:
    evil = '<script>alert("x")</script>'
    out = render("invite", invite(tenant_name=f"Acme {evil}", inviter_name="<b>Eve</b> & co"))
    assert "<script>" not in out.html and "<b>Eve</b>" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in out.html
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; co" in out.html
    assert evil in out.text and "<b>Eve</b> & co" in out.text


def test_subject_stays_one_line() -> None:
    out = render("password_reset", reset(tenant_name="Acme\r\nBcc: victim@example.com"))
    assert "\n" not in out.subject and "\r" not in out.subject


def test_message_is_multipart_alternative_with_headers() -> None:
    msg = build_message(
        render("invite", invite()),
        to="new@example.com",
        sender="Tenantflow <no-reply@tf.example.com>",
        mail_id="abc123",
        template="invite",
        tenant_slug="acme",
    )
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Message-ID"] == "<abc123@tf.example.com>"
    assert msg["To"] == "new@example.com" and msg["X-Tenantflow-Tenant"] == "acme"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Date"]


@pytest.mark.parametrize(
    ("template", "context", "error"),
    [
        ("welcome", invite(), UnknownTemplate),
        ("invite", {k: v for k, v in invite().items() if k != "role"}, ValidationError),
        ("invite", invite(extra="typo"), ValidationError),
        ("invite", invite(expires_at=dt.datetime(2030, 1, 1)), ValidationError),
        ("invite", invite(accept_url="javascript:alert(1)"), ValidationError),
        ("password_reset", reset(expires_minutes=0), ValidationError),
        ("password_reset", reset(tenant_name=""), ValidationError),
    ],
)
def test_queue_email_refuses_bad_input_before_sending(
    template: str, context: dict[str, Any], error: type[Exception]
) -> None:
    with mock.patch.object(Task, "apply_async") as sent, pytest.raises(error):
        queue_email(record(), "new@example.com", template, context)
    sent.assert_not_called()


@pytest.mark.parametrize(
    "to", ["", "nope", "Foo <a@example.com>", "a@example.com, b@example.com", "a@x.com\nBcc: b@y"]
)
def test_recipient_must_be_one_bare_address(to: str) -> None:
    with pytest.raises(ValueError):
        validate_recipient(to)


@pytest.mark.parametrize("pinned", [None, "vip"])
def test_queue_email_binds_the_task_to_its_tenant(settings: Any, pinned: str | None) -> None:
    tenant = record(queue=pinned)
    with mock.patch.object(Task, "apply_async") as sent:
        queue_email(tenant, "new@example.com", "invite", invite())
    options = sent.call_args.kwargs
    assert options["headers"][HEADER] == str(tenant.id)
    assert options["queue"] == keys.queue_for(tenant.id, settings.queue_partitions, pinned)
    kwargs = sent.call_args.args[1]
    assert kwargs["to"] == "new@example.com" and kwargs["template"] == "invite"
    assert kwargs["context"]["expires_at"] == "2030-01-02T15:04:00Z"
    # What monitors and task events show carries neither the link nor the recipient.
    assert "SECRET-TOKEN" not in options["kwargsrepr"] and "new@" not in options["kwargsrepr"]


def test_queue_email_needs_a_tenant() -> None:
    with mock.patch.object(Task, "apply_async") as sent, pytest.raises(TenantNotBound):
        queue_email(None, "new@example.com", "invite", invite())  # type: ignore[arg-type]
    sent.assert_not_called()


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"mailbox busy")}), False),
        (smtplib.SMTPSenderRefused(553, b"sender refused", "s@x"), True),
        (smtplib.SMTPDataError(451, b"try later"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (TimeoutError("timed out"), False),
    ],
)
def test_permanent_and_transient_failures(exc: BaseException, permanent: bool) -> None:
    assert smtp.is_permanent(exc) is permanent
    assert isinstance(exc, smtp.SEND_ERRORS)


def test_backoff_doubles_jitters_and_is_capped() -> None:
    for retries in range(12):
        delay = smtp.backoff(retries, 30, 1800)
        ceiling = min(1800, 30 * 2**retries)
        assert ceiling / 2 <= delay <= ceiling


def _send(port: int, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.sendmail("s@example.com", [to], f"Subject: {subject}\r\nTo: {to}\r\n\r\nhi\r\n")


def test_sink_stores_lists_and_refuses(tmp_path: Path) -> None:
    with MailSink(tmp_path / "mail", port=0, reject=["gone@example.com"]) as sink:
        _send(sink.port, "a@example.com", "first")
        _send(sink.port, "b@example.com", "second")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            _send(sink.port, "gone@example.com", "third")
        assert refused.value.recipients["gone@example.com"][0] == 550
        with pytest.raises(OSError, match="cannot listen"):
            MailSink(tmp_path / "other", port=sink.port).start()
        got = sink.wait_for(2, timeout=5)
    assert [m["Subject"] for m in got] == ["first", "second"]
    assert got[1]["X-Sink-Rcpt-To"] == "b@example.com"
    assert not list((tmp_path / "mail").glob(".*.tmp"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "mail", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )


def test_mail_cli_lists_and_shows(tmp_path: Path) -> None:
    msg = build_message(
        render("invite", invite(inviter_name="<b>Eve</b>")),
        to="new@example.com",
        sender="no-reply@tf.example.com",
        mail_id="m1",
        template="invite",
        tenant_slug="acme",
    )
    with MailSink(tmp_path, port=0) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.send_message(msg)
        assert sink.wait_for(1, timeout=5)
    listed = _cli("list", "--dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "new@example.com" in listed.stdout and "1 mail(s)" in listed.stdout
    shown = _cli("show", "1", "--dir", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "Subject: <b>Eve</b> invited you to Acme on Tenantflow" in shown.stdout
    assert TOKEN_URL in shown.stdout and "<html" not in shown.stdout
    assert "&lt;b&gt;Eve" in _cli("show", "--html", "--dir", str(tmp_path)).stdout
    missing = _cli("show", "2", "--dir", str(tmp_path))
    assert missing.returncode == 2 and "no mail 2" in missing.stderr
    assert "no mail received" in _cli("show", "--dir", str(tmp_path / "empty")).stderr
    for sub in ("list", "show"):
        assert "--dir" in _cli(sub, "--help").stdout


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    # start_mail_sink writes TENANTFLOW_SMTP_* for the dev children: let monkeypatch undo it.
    for name in ("TENANTFLOW_SMTP_HOST", "TENANTFLOW_SMTP_PORT"):
        monkeypatch.setenv(name, "1")
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_dev_sink_moves_to_a_free_port_when_busy(tmp_path: Path, clean_settings: Any) -> None:
    with MailSink(tmp_path / "other", port=0) as busy:
        clean_settings.setenv("TENANTFLOW_SMTP_PORT", str(busy.port))
        get_settings.cache_clear()
        sink, line = start_mail_sink(tmp_path)
        assert sink is not None
        try:
            assert sink.port != busy.port and sink.directory == tmp_path / "mail"
            assert line == f"Mail: {tmp_path / 'mail'} (SMTP 127.0.0.1:{sink.port})"
            assert os.environ["TENANTFLOW_SMTP_PORT"] == str(sink.port)
        finally:
            sink.stop()


def test_dev_starts_no_sink_when_smtp_host_is_set(tmp_path: Path, clean_settings: Any) -> None:
    clean_settings.setenv("TENANTFLOW_SMTP_HOST", "mail.internal")
    get_settings.cache_clear()
    sink, line = start_mail_sink(tmp_path)
    assert sink is None and "mail.internal:1025" in line and "no sink" in line
    assert not (tmp_path / "mail").exists()
