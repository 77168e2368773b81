"""Alembic environment of the tenant migration set (see alembic.ini for the commands)."""

from logging.config import fileConfig

from alembic import context

from tenancy.migrate import run_tenant_env

if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

run_tenant_env(context)
