"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.identity.models import ApiKey, AuditEvent, RefreshToken, User
from backend.projects.models import Project
from tenancy.registry import Tenant

__all__ = ["ApiKey", "AuditEvent", "Project", "RefreshToken", "Tenant", "User"]
