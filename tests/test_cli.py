"""The tenantflow command, run as a user runs it (a subprocess against the test database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from tests.conftest import OWNER_PASSWORD


def cli(*args: str, stdin: str | None = None, **env_over: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TENANTFLOW_OWNER_PASSWORD": OWNER_PASSWORD, **env_over}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def test_tenant_lifecycle(sync_engine):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    created = cli(
        "tenants",
        "create",
        slug,
        "--name",
        "CLI Co",
        "--owner-email",
        f"o@{slug}.example.com",
        "--plan",
        "pro",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert data["slug"] == slug and data["status"] == "active" and data["plan"] == "pro"

    again = cli("tenants", "create", slug, "--name", "x", "--owner-email", "o@x.example.com")
    assert again.returncode == 2 and "exists" in again.stderr

    listed = json.loads(cli("tenants", "list", "--json").stdout)
    assert slug in {t["slug"] for t in listed}
    assert cli("tenants", "show", slug).stdout.count(slug) >= 1
    assert json.loads(cli("tenants", "suspend", slug, "--json").stdout)["status"] == "suspended"
    assert json.loads(cli("tenants", "resume", slug, "--json").stdout)["status"] == "active"

    refused = cli("tenants", "delete", slug, stdin="n\n")
    assert refused.returncode != 0
    deleted = cli("tenants", "delete", slug, "--yes", "--now")
    assert deleted.returncode == 0, deleted.stderr
    missing = cli("tenants", "show", slug)
    assert missing.returncode == 2 and "no tenant" in missing.stderr.lower()


def test_create_validates_input():
    bad = cli("tenants", "create", "Admin!", "--name", "x", "--owner-email", "nope")
    assert bad.returncode == 2
    assert "slug" in bad.stderr and "owner_email" in bad.stderr


def test_help_documents_every_command():
    for args in (
        [],
        ["tenants"],
        ["migrate"],
        ["dev"],
        ["worker"],
        ["beat"],
        ["api"],
        ["services"],
        ["flags"],
        ["limits"],
        ["limits", "set"],
    ):
        result = cli(*args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, args


def test_suspend_with_redis_away_exits_non_zero(make_tenant, sync_engine, settings):
    from tenancy import registry

    tenant = make_tenant("cli-stale")
    dead = {"TENANTFLOW_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = cli("tenants", "suspend", tenant.slug, **dead)
    assert result.returncode == 1, result.stdout
    message = " ".join(result.stderr.split())
    stale = settings.registry_max_staleness_seconds
    assert "in PostgreSQL" in message and f"up to {stale} seconds" in message, message
    with sync_engine.connect() as conn:
        assert registry.get_by_slug(conn, tenant.slug).status == "suspended"
    now = cli("tenants", "delete", tenant.slug, "--yes", "--now", **dead)
    assert now.returncode == 1 and "not dropped" in " ".join(now.stderr.split())
    with sync_engine.connect() as conn:
        assert registry.get_by_slug(conn, tenant.slug).status == "deleting"
