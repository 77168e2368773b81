"""Alembic environment of a tenant schema (one tenant per run: -x tenant=<slug>)."""

from alembic import context

from tenancy.migrate import run_tenant_env

run_tenant_env(context)
