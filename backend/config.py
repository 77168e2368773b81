"""Settings: one pydantic-settings class, env prefix TENANTFLOW_.

Development gets working defaults; production refuses to start with any of them.
"""

from __future__ import annotations

import math
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0000000000"  # noqa: S105 (refused in production)
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tenantflow"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class JwtKey(BaseModel):
    """One access-token key. HS* keys carry ``secret``; RS256/ES256/EdDSA keys a PEM
    ``private_key`` (signs and verifies) or only a ``public_key`` (verifies, during rotation)."""

    kid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    alg: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]
    secret: SecretStr | None = None
    private_key: SecretStr | None = None
    public_key: str | None = None

    @model_validator(mode="after")
    def _material_matches_alg(self) -> JwtKey:
        if self.alg.startswith("HS"):
            if self.secret is None or len(self.secret.get_secret_value()) < 32:
                raise ValueError(f"key {self.kid}: {self.alg} needs a secret of >= 32 chars")
            if self.private_key or self.public_key:
                raise ValueError(f"key {self.kid}: {self.alg} takes a secret, not PEM keys")
        elif self.private_key is None and self.public_key is None:
            raise ValueError(f"key {self.kid}: {self.alg} needs private_key or public_key (PEM)")
        elif self.secret is not None:
            raise ValueError(f"key {self.kid}: {self.alg} takes PEM keys, not a secret")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTFLOW_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    #: Signs access tokens (HS256, kid "primary") when TENANTFLOW_JWT_KEYS is empty. At least 32
    #: characters; never the dev default in production.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    #: Access-token keys as a JSON list of {kid, alg, secret | private_key | public_key}; tokens
    #: are verified with the key their ``kid`` names, so two keys overlap during rotation.
    jwt_keys: list[JwtKey] = []
    #: The kid that signs new tokens (default: the first key with signing material).
    jwt_signing_kid: str | None = None
    #: Bearer token for /platform/v1 (required in production).
    platform_token: SecretStr | None = None
    #: Tenants are also resolved from the Host header: <slug>.<base_domain>.
    base_domain: str | None = None
    queue_partitions: int = Field(default=4, ge=1, le=1024)
    access_token_lifetime_seconds: int = Field(default=900, ge=60, le=86400)
    refresh_token_lifetime_seconds: int = Field(default=30 * 86400, ge=300)
    #: How long an invite link works (single use).
    invite_ttl_seconds: int = Field(default=7 * 86400, ge=300, le=90 * 86400)
    #: How long a password-reset link works (single use; dead once the password changed).
    reset_ttl_seconds: int = Field(default=3600, ge=300, le=86400)
    #: Invite accepts and password resets with a bad token, per client address.
    token_max_failures_per_address: int = Field(default=20, ge=1)
    #: Forgot-password requests per account (and 4x that per address) within an hour.
    forgot_password_max_per_account: int = Field(default=5, ge=1)
    #: Lifetime of an operator's access token (POST /platform/v1/auth/login).
    operator_access_token_lifetime_seconds: int = Field(default=900, ge=60, le=86400)
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
    #: Failed logins of one account before it is locked (backend.kit.throttle).
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    #: Failed logins from one client address, over all accounts, before it is locked.
    login_max_failures_per_address: int = Field(default=50, ge=1, le=100000)
    #: First lock after too many failures; each further failure doubles it up to the max.
    login_lockout_seconds: float = Field(default=30.0, gt=0, le=86400)
    login_max_lockout_seconds: float = Field(default=900.0, gt=0, le=86400)
    #: How long a cached stats document lives. Task writes make it stale at once (generation
    #: bump); this bounds staleness only when that bump failed (Redis away).
    stats_cache_ttl_seconds: int = Field(default=60, ge=1, le=3600)
    cors_origins: list[str] = []
    #: Event pipeline (backend/events): retries of a failing handler before its event goes to
    #: the dead letters, with exponential backoff from the base, capped, plus jitter.
    event_max_retries: int = Field(default=5, ge=0, le=20)
    event_retry_base_seconds: float = Field(default=1.0, gt=0, le=60)
    event_retry_max_seconds: float = Field(default=300.0, gt=0, le=3000)
    #: Batch messages of one tenant that may be in flight at once; the relay holds the rest
    #: back so a tenant with a backlog cannot starve the others of its partition (see
    #: backend/events/inflight.py). Keep it below the worker processes that consume a
    #: partition, so a slot stays free for other tenants (1 for the default 2-process worker;
    #: measured with bench/events). Events per batch message: ``event_batch_size``.
    event_inflight_per_tenant: int = Field(default=1, ge=1, le=10_000_000)
    event_batch_size: int = Field(default=8, ge=1, le=500)
    #: Events per batch message while a tenant is the only one writing (nobody waits behind
    #: it, so larger batches drain its backlog faster); ``event_batch_size`` otherwise.
    event_batch_size_alone: int = Field(default=64, ge=1, le=500)
    #: Outbox rows the relay claims per tenant and turn.
    relay_batch_size: int = Field(default=100, ge=1, le=5000)
    #: The relay's sweep for events whose notification it missed: every this many seconds it
    #: checks the next ``relay_sweep_tenants`` tenants (and all of them when it (re)connects).
    relay_sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    relay_sweep_tenants: int = Field(default=500, ge=1, le=100_000)
    #: A published event some handler has not finished with after this long is published to
    #: that handler again (a message lost with a Redis restart, say). Longer than a handler's
    #: whole retry sequence takes; the inbox makes the extra delivery harmless anyway.
    event_redeliver_after_seconds: float = Field(default=900.0, ge=1, le=86400)
    #: The broker redelivers a message a worker took but did not acknowledge (it died) after
    #: this long. Retry delays stay below it.
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=5, le=86400)
    #: Published events (the event log) and inbox entries older than this are pruned.
    event_retention_days: int = Field(default=30, ge=1, le=3650)
    #: Live feed (backend/realtime): a heartbeat message this often keeps proxies from closing
    #: a quiet WebSocket; a resuming client is replayed at most ``stream_replay_max`` events.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    stream_replay_max: int = Field(default=1000, ge=1, le=100_000)
    #: Proxies whose X-Forwarded-For `tenantflow api` trusts (comma-separated addresses or
    #: networks). The client address drives per-address login lockout and audit records.
    forwarded_allow_ips: str = "127.0.0.1"
    #: Request bodies larger than this are refused with 413 (Content-Length or streamed).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    #: How long a POST result is kept for replay under its Idempotency-Key.
    idempotency_ttl_seconds: int = Field(default=86400, ge=60, le=7 * 86400)
    #: How long a key stays claimed by a request that is still running (a crashed process
    #: releases it after this long); well above the statement timeout.
    idempotency_lock_seconds: int = Field(default=120, ge=5, le=3600)
    #: Per-tenant rate limits on /api/ (backend/ratelimit): plans and overrides from the
    #: platform API. Off only for a deployment whose gateway limits requests itself.
    ratelimit_enabled: bool = True
    #: Longest wait for Redis's verdict; past it the policies' failure modes apply (open:
    #: admitted unlimited, closed: 503), so a slow Redis never holds requests. Wall time, the
    #: process's own event-loop queueing included: too low a value fails open on a busy process.
    ratelimit_redis_timeout_ms: int = Field(default=250, ge=5, le=5000)
    #: How long a process serves its copy of plans and overrides before reloading it (changes
    #: made through the platform API reach every process at once by Redis pub/sub).
    ratelimit_refresh_seconds: float = Field(default=10.0, gt=0, le=3600)
    #: A request in flight counts against its tenant's concurrency limit for at most this long
    #: (the slot of a process killed mid-request is freed after it).
    ratelimit_inflight_stale_seconds: float = Field(default=300.0, ge=1, le=86400)
    #: How often each process checks that its copy of the feature flags is current, besides
    #: the Redis pub/sub notice that refreshes it within a second of a change.
    flags_check_seconds: float = Field(default=5.0, gt=0, le=3600)
    log_level: str = "INFO"
    #: Where make dev keeps embedded services and generated secrets.
    var_dir: str = "var"
    #: Base of every link in outgoing mail (invites, password reset); no trailing slash.
    public_url: str = DEFAULT_PUBLIC_URL
    #: Outgoing mail (SMTP). The defaults reach the dev sink that `tenantflow dev` starts;
    #: production refuses to start unless host and from address are set explicitly.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Tenantflow <no-reply@tenantflow.localhost>"
    #: Upgrade a plain connection with STARTTLS (port 587); exclusive with smtp_ssl.
    smtp_starttls: bool = False
    #: Implicit TLS from the first byte (port 465).
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: First retry of a failed send after about this long, doubling on each retry (jittered).
    email_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: No retry waits longer than this; stays below the broker's visibility timeout (3600 s).
    email_retry_max_seconds: float = Field(default=1800.0, gt=0, le=3000)
    email_max_retries: int = Field(default=8, ge=0, le=20)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("smtp_from")
    @classmethod
    def _from_address(cls, value: str) -> str:
        _, addr = parseaddr(value)
        try:
            Address(addr_spec=addr)
        except (ValueError, IndexError) as exc:
            raise ValueError(f"not an email address: {value!r}") from exc
        if "@" not in addr:
            raise ValueError(f"not an email address: {value!r}")
        return value

    @model_validator(mode="after")
    def _smtp_consistent(self) -> Settings:
        if self.smtp_starttls and self.smtp_ssl:
            raise ValueError("TENANTFLOW_SMTP_STARTTLS and TENANTFLOW_SMTP_SSL are exclusive")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both TENANTFLOW_SMTP_USERNAME and TENANTFLOW_SMTP_PASSWORD")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET_KEY or len(secret) < 32:
            problems.append("TENANTFLOW_SECRET_KEY must be set to a random value of >= 32 chars")
        if any(k.secret and k.secret.get_secret_value() == DEV_SECRET_KEY for k in self.jwt_keys):
            problems.append("TENANTFLOW_JWT_KEYS must not use the development secret")
        token = self.platform_token.get_secret_value() if self.platform_token else ""
        if len(token) < 32:
            problems.append("TENANTFLOW_PLATFORM_TOKEN must be set (>= 32 chars) in production")
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("TENANTFLOW_DATABASE_URL must be set explicitly in production")
        if self.redis_url == DEFAULT_REDIS_URL:
            problems.append("TENANTFLOW_REDIS_URL must be set explicitly in production")
        if "*" in self.cors_origins:
            problems.append("TENANTFLOW_CORS_ORIGINS must not contain '*' in production")
        # Explicitly set, not "differs from the default": a local relay on 127.0.0.1 is fine.
        if "smtp_host" not in self.model_fields_set or not self.smtp_host:
            problems.append("TENANTFLOW_SMTP_HOST must be set explicitly in production")
        if "smtp_from" not in self.model_fields_set:
            problems.append("TENANTFLOW_SMTP_FROM must be set explicitly in production")
        if self.public_url == DEFAULT_PUBLIC_URL:
            problems.append("TENANTFLOW_PUBLIC_URL must be set to the public URL in production")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _signing_key_exists(self) -> Settings:
        kids = [k.kid for k in self.jwt_keys]
        if len(set(kids)) != len(kids):
            raise ValueError("TENANTFLOW_JWT_KEYS: kids must be unique")
        signers = [k.kid for k in self.jwt_keys if k.secret or k.private_key]
        if self.jwt_keys and not signers:
            raise ValueError("TENANTFLOW_JWT_KEYS: no key can sign (all are public keys)")
        if self.jwt_signing_kid is not None and self.jwt_signing_kid not in signers:
            raise ValueError(
                f"TENANTFLOW_JWT_SIGNING_KID {self.jwt_signing_kid!r} names no signing key"
            )
        return self

    @model_validator(mode="after")
    def _lockout_order(self) -> Settings:
        if self.login_lockout_seconds > self.login_max_lockout_seconds:
            raise ValueError("login_lockout_seconds must not exceed login_max_lockout_seconds")
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
