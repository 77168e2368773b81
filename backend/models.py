"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.identity.models import User
from backend.projects.models import Project
from tenancy.registry import Tenant

__all__ = ["Project", "Tenant", "User"]
