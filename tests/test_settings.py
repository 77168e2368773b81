"""Settings refuse development defaults in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.config import Settings

SAFE = {
    "env": "production",
    "secret_key": "s" * 40,
    "platform_token": "p" * 40,
    "database_url": "postgresql+psycopg://app@db.internal/tenantflow",
    "redis_url": "redis://cache.internal:6379/0",
    "smtp_host": "smtp.internal",
    "smtp_from": "Tenantflow <no-reply@tenantflow.example.com>",
    "public_url": "https://app.tenantflow.example.com",
}


def test_development_defaults_work() -> None:
    assert Settings(_env_file=None, env="development").queue_partitions == 4


def test_production_with_safe_values() -> None:
    assert Settings(**SAFE).env == "production"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("secret_key", "dev-insecure-secret-key-change-me-0000000000", "SECRET_KEY"),
        ("secret_key", "short", "SECRET_KEY"),
        ("platform_token", None, "PLATFORM_TOKEN"),
        ("database_url", "postgresql+psycopg://postgres@127.0.0.1:5432/tenantflow", "DATABASE_URL"),
        ("redis_url", "redis://127.0.0.1:6379/0", "REDIS_URL"),
        ("cors_origins", ["*"], "CORS"),
        ("smtp_host", "", "SMTP_HOST"),
        ("public_url", "http://127.0.0.1:8000", "PUBLIC_URL"),
    ],
)
def test_production_refuses_unsafe(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{**SAFE, field: value})


@pytest.mark.parametrize(("field", "message"), [("smtp_host", "SMTP_HOST"), ("smtp_from", "FROM")])
def test_production_refuses_unset_mail_settings(
    field: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"TENANTFLOW_{field.upper()}", raising=False)
    values = {k: v for k, v in SAFE.items() if k != field}
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_production_accepts_a_local_relay_set_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTFLOW_SMTP_HOST", "127.0.0.1")
    values = {k: v for k, v in SAFE.items() if k != "smtp_host"}
    assert Settings(**values).smtp_host == "127.0.0.1"


def test_mail_defaults_reach_the_dev_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_HOST", "SMTP_PORT", "PUBLIC_URL"):
        monkeypatch.delenv(f"TENANTFLOW_{name}", raising=False)
    s = Settings(_env_file=None, env="development")
    assert (s.smtp_host, s.smtp_port, s.public_url) == ("127.0.0.1", 1025, "http://127.0.0.1:8000")
    assert s.email_max_retries == 8 and s.email_retry_base_seconds == 30


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"smtp_starttls": True, "smtp_ssl": True}, "exclusive"),
        ({"smtp_username": "mailer"}, "SMTP_PASSWORD"),
        ({"smtp_from": "not an address"}, "email address"),
        ({"public_url": "app.example.com"}, "http"),
        ({"email_retry_max_seconds": 7200}, "less than or equal"),
    ],
)
def test_mail_settings_are_checked_everywhere(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(env="development", **values)


def test_public_url_loses_its_trailing_slash() -> None:
    assert Settings(public_url="https://app.example.com/").public_url == "https://app.example.com"


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTFLOW_QUEUE_PARTITIONS", "8")
    assert Settings().queue_partitions == 8
