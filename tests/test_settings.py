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
    ],
)
def test_production_refuses_unsafe(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{**SAFE, field: value})


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTFLOW_QUEUE_PARTITIONS", "8")
    assert Settings().queue_partitions == 8
