"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.events.models import DeadLetter, InboxEntry, OutboxEvent, ProjectTaskCount
from backend.identity.models import ApiKey, AuditEvent, RefreshToken, User
from backend.operators.models import Operator, OperatorToken
from backend.projects.models import Project, ProjectStatus
from backend.ratelimit.models import Plan, TenantLimits
from backend.tasks.models import Comment, Label, Task
from tenancy.registry import Tenant

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Comment",
    "DeadLetter",
    "InboxEntry",
    "Label",
    "Operator",
    "OperatorToken",
    "OutboxEvent",
    "Plan",
    "Project",
    "ProjectStatus",
    "ProjectTaskCount",
    "RefreshToken",
    "Task",
    "Tenant",
    "TenantLimits",
    "User",
]
