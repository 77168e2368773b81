"""Import every model so the metadata is complete (Alembic, tooling)."""

from backend.events.models import DeadLetter, InboxEntry, OutboxEvent, ProjectTaskCount
from backend.flags.tables import FlagAudit, FlagOverride, FlagRow, FlagState, SegmentRow
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
    "FlagAudit",
    "FlagOverride",
    "FlagRow",
    "FlagState",
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
    "SegmentRow",
    "Task",
    "Tenant",
    "TenantLimits",
    "User",
]
