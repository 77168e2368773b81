"""Alembic environment of the shared (platform) schema."""

from alembic import context

from tenancy.migrate import run_shared_env

run_shared_env(context)
