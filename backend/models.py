"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.identity.models import ApiKey, AuditEvent, RefreshToken, User
from backend.operators.models import Operator, OperatorToken
from backend.projects.models import Project, ProjectStatus
from backend.tasks.models import Comment, Label, Task
from tenancy.registry import Tenant

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Comment",
    "Label",
    "Operator",
    "OperatorToken",
    "Project",
    "ProjectStatus",
    "RefreshToken",
    "Task",
    "Tenant",
    "User",
]
