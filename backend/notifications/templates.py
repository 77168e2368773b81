"""Mail templates: typed contexts, Jinja2 rendering, and the multipart/alternative message.

Each template ``<name>`` has ``<name>.subject.txt``, ``<name>.txt`` (plain text) and
``<name>.html`` (autoescaped) in ``templates/``, and a context model in ``CONTEXTS`` that
``queue_email`` validates before anything is sent, so a caller's mistake fails in the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import jinja2
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class UnknownTemplate(ValueError):
    """No mail template has this name."""


class _Context(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_name: str = Field(min_length=1, max_length=200)


def _absolute_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise ValueError("must be an absolute http(s) URL without spaces")
    return value


class InviteContext(_Context):
    inviter_name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=50)
    accept_url: str
    expires_at: AwareDatetime

    _url = field_validator("accept_url")(_absolute_url)


class PasswordResetContext(_Context):
    reset_url: str
    expires_minutes: int = Field(ge=1, le=7 * 24 * 60)

    _url = field_validator("reset_url")(_absolute_url)


CONTEXTS: dict[str, type[_Context]] = {
    "invite": InviteContext,
    "password_reset": PasswordResetContext,
}


def validate_context(template: str, context: Mapping[str, Any]) -> _Context:
    """The template's context model; raises UnknownTemplate or pydantic's ValidationError."""
    model = CONTEXTS.get(template)
    if model is None:
        raise UnknownTemplate(f"no mail template {template!r}; known: {sorted(CONTEXTS)}")
    return model.model_validate(dict(context))


def validate_recipient(to: str) -> str:
    """One bare address (``user@example.com``); refuses display names, lists and line breaks."""
    try:
        address = Address(addr_spec=to)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not a single email address: {to!r}") from exc
    if not address.username or not address.domain or address.addr_spec != to:
        raise ValueError(f"not a single email address: {to!r}")
    return to


def _format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("backend.notifications", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_env.filters["datetime"] = _format_datetime


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    """Subject, plain text and HTML of a template (the context is validated first)."""
    values = dict(validate_context(template, context))
    subject = _env.get_template(f"{template}.subject.txt").render(values)
    return Rendered(
        subject=" ".join(subject.split()),
        text=_env.get_template(f"{template}.txt").render(values),
        html=_env.get_template(f"{template}.html").render(values),
    )


def message_id(mail_id: str, sender: str) -> str:
    """A Message-ID stable across retries, so receivers can drop a duplicate delivery."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tenantflow.localhost"
    return f"<{mail_id}@{domain}>"


def build_message(
    rendered: Rendered,
    *,
    to: str,
    sender: str,
    mail_id: str,
    template: str,
    tenant_slug: str,
) -> EmailMessage:
    """A multipart/alternative message: text/plain first, text/html preferred by clients."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(mail_id, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Tenantflow-Tenant"] = tenant_slug
    msg["X-Tenantflow-Template"] = template
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
