"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.identity.models import ApiKey, AuditEvent, RefreshToken, User
from backend.operators.models import Operator, OperatorToken
from backend.projects.models import Project
from tenancy.registry import Tenant

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Operator",
    "OperatorToken",
    "Project",
    "RefreshToken",
    "Tenant",
    "User",
]
