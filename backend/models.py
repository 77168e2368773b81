"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.identity.models import User
from backend.operators.models import Operator, OperatorToken
from backend.projects.models import Project
from tenancy.registry import Tenant

__all__ = ["Operator", "OperatorToken", "Project", "Tenant", "User"]
