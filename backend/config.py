"""Settings: one pydantic-settings class, env prefix TENANTFLOW_.

Development gets working defaults; production refuses to start with any of them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0000000000"  # noqa: S105 (refused in production)
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tenantflow"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTFLOW_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    #: Signs access tokens (HS256). At least 32 characters; never the dev default in production.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    #: Bearer token for /platform/v1 (required in production).
    platform_token: SecretStr | None = None
    #: Tenants are also resolved from the Host header: <slug>.<base_domain>.
    base_domain: str | None = None
    queue_partitions: int = Field(default=4, ge=1, le=1024)
    access_token_lifetime_seconds: int = Field(default=900, ge=60, le=86400)
    jwt_audience: str = "tenantflow"
    jwt_issuer: str = "tenantflow"
    #: How long a process trusts its in-process copy of a registry entry.
    registry_local_ttl_seconds: float = Field(default=2.0, ge=0, le=60)
    #: How long the Redis copy of a registry entry lives. Deleted on every change; this bounds
    #: how long a status change can go unenforced when that deletion fails (Redis away).
    registry_redis_ttl_seconds: int = Field(default=60, ge=1, le=3600)
    db_pool_size: int = Field(default=10, ge=1)
    #: API connections give up waiting for a lock after this long (0: wait forever), so a
    #: table locked by a migration answers 503 tenant-busy instead of starving the pool.
    db_lock_timeout_ms: int = Field(default=5000, ge=0)
    #: API statements are cancelled after this long (0: no limit). Not applied to migrations.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_max_overflow: int = Field(default=10, ge=0)
    #: Redis calls on the request path give up after this long.
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    cors_origins: list[str] = []
    log_level: str = "INFO"
    #: Where make dev keeps embedded services and generated secrets.
    var_dir: str = "var"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET_KEY or len(secret) < 32:
            problems.append("TENANTFLOW_SECRET_KEY must be set to a random value of >= 32 chars")
        token = self.platform_token.get_secret_value() if self.platform_token else ""
        if len(token) < 32:
            problems.append("TENANTFLOW_PLATFORM_TOKEN must be set (>= 32 chars) in production")
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("TENANTFLOW_DATABASE_URL must be set explicitly in production")
        if self.redis_url == DEFAULT_REDIS_URL:
            problems.append("TENANTFLOW_REDIS_URL must be set explicitly in production")
        if "*" in self.cors_origins:
            problems.append("TENANTFLOW_CORS_ORIGINS must not contain '*' in production")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def registry_max_staleness_seconds(self) -> int:
        """How long a registry change can stay unseen when its cache invalidation failed."""
        return math.ceil(self.registry_redis_ttl_seconds + self.registry_local_ttl_seconds)

    @property
    def sync_database_url(self) -> str:
        return self.database_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
