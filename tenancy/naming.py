"""The only place a schema name is made and validated.

Slugs are what people type; schema names are what PostgreSQL sees. A schema name is derived
from a validated slug, never from raw text, and every name is checked again before it is used
in DDL, so a bad value fails here instead of reaching SQL.
"""

from __future__ import annotations

import re

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: The shared (platform) schema: tenant registry, operators, plans.
SHARED_SCHEMA = "tf_shared"
#: Placeholder schema that tenant tables are declared in. It never matches SCHEMA_RE, so it
#: can never exist as a real schema: an unmapped query fails instead of reading another tenant.
TENANT_PLACEHOLDER = "__tenant__"
TENANT_SCHEMA_PREFIX = "t_"

RESERVED_SLUGS = frozenset(
    {
        "www",
        "api",
        "admin",
        "platform",
        "public",
        "app",
        "apps",
        "static",
        "assets",
        "cdn",
        "mail",
        "smtp",
        "imap",
        "pop",
        "ftp",
        "ssh",
        "status",
        "docs",
        "help",
        "support",
        "blog",
        "dev",
        "staging",
        "test",
        "demo-template",
        "template",
        "root",
        "system",
        "internal",
        "auth",
        "login",
        "logout",
        "signup",
        "billing",
        "metrics",
        "grafana",
        "prometheus",
        "health",
        "healthz",
        "readyz",
        "ws",
        "stream",
        "events",
        "webhooks",
        "null",
        "undefined",
        "pg-catalog",
        "information-schema",
        "tenantflow",
        "operator",
        "operators",
    }
)


class InvalidSlug(ValueError):
    """A slug that does not match the rules or is reserved."""


class InvalidSchemaName(ValueError):
    """A schema name that is not one this module would have made."""


def validate_slug(slug: str) -> str:
    """Return the slug if it is acceptable for a new tenant, else raise InvalidSlug."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise InvalidSlug(
            "a slug is 2-40 characters: a lowercase letter, then lowercase letters, digits or '-'"
        )
    if slug.endswith("-") or "--" in slug:
        raise InvalidSlug("a slug cannot end with '-' or contain '--'")
    if slug in RESERVED_SLUGS:
        raise InvalidSlug(f"'{slug}' is reserved")
    return slug


def is_valid_slug(slug: str) -> bool:
    try:
        validate_slug(slug)
    except InvalidSlug:
        return False
    return True


def schema_for_slug(slug: str) -> str:
    """The schema name of a tenant: ``t_`` + slug with '-' as '_' (injective: slugs have no '_')."""
    validate_slug(slug)
    return validate_schema_name(TENANT_SCHEMA_PREFIX + slug.replace("-", "_"))


def validate_schema_name(name: str) -> str:
    """Return name if it is a tenant or shared schema name this module makes, else raise."""
    if not isinstance(name, str) or not SCHEMA_RE.fullmatch(name):
        raise InvalidSchemaName(f"invalid schema name {name!r}")
    if name != SHARED_SCHEMA and not name.startswith(TENANT_SCHEMA_PREFIX):
        raise InvalidSchemaName(f"{name!r} is neither the shared schema nor a tenant schema")
    return name


def quote_schema(name: str) -> str:
    """A validated schema name as an SQL identifier (validation makes quoting a formality)."""
    return '"' + validate_schema_name(name) + '"'
