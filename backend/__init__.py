"""Tenantflow: a multi-tenant backend for task and workflow management."""

__version__ = "0.1.0"
