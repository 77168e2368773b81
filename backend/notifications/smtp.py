"""Hand one message to the configured SMTP server, and tell permanent refusals from the rest."""

from __future__ import annotations

import secrets
import smtplib
import ssl
from email.message import EmailMessage

from backend.config import Settings

#: What a send can raise: SMTP replies and protocol errors, and socket/TLS errors (OSError).
SEND_ERRORS = (smtplib.SMTPException, OSError)


def deliver(message: EmailMessage, settings: Settings) -> None:
    """Connect, optionally TLS and log in, send; raises one of SEND_ERRORS on failure."""
    timeout = settings.smtp_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_ssl:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username is not None and settings.smtp_password is not None:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def is_permanent(exc: BaseException) -> bool:
    """A 5xx refusal (or a server that lacks what we are configured to use): retrying won't help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, smtplib.SMTPNotSupportedError)


def describe(exc: BaseException) -> str:
    """One line for the log: the SMTP reply or the exception; never message content."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def backoff(retries: int, base: float, cap: float) -> float:
    """Seconds before retry ``retries + 1``: base * 2**retries, capped, jittered to 50-100%."""
    delay = min(cap, base * 2 ** min(retries, 30))
    return secrets.SystemRandom().uniform(delay / 2, delay)
