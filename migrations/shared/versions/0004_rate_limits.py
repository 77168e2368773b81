"""rate limits: plans with their limits, per-tenant overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tf_shared"

#: name, per tenant, per user, tenant writes, auth per client address (all per minute).
DEFAULTS = (
    ("free", 600, 120, 300, 30),
    ("pro", 6_000, 1_200, 3_000, 60),
    ("enterprise", 60_000, 12_000, 30_000, 120),
)


def _limits() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(name, sa.Integer(), nullable=nullable)
        for name, nullable in (
            ("requests_per_minute", False),
            ("user_requests_per_minute", False),
            ("write_requests_per_minute", False),
            ("auth_requests_per_minute", False),
        )
    ]


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name", sa.String(20), nullable=False),
        *_limits(),
        sa.Column("concurrent_requests", sa.Integer(), nullable=True),
        sa.Column(
            "shadow",
            postgresql.ARRAY(sa.String(20)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "fail_closed",
            postgresql.ARRAY(sa.String(20)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name="pk_plans"),
        schema=SCHEMA,
    )
    op.bulk_insert(
        plans,
        [
            {
                "name": name,
                "requests_per_minute": tenant,
                "user_requests_per_minute": user,
                "write_requests_per_minute": writes,
                "auth_requests_per_minute": auth,
                "concurrent_requests": None,
                "shadow": [],
                "fail_closed": ["auth"],
            }
            for name, tenant, user, writes, auth in DEFAULTS
        ],
    )
    op.create_table(
        "tenant_limits",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        *[sa.Column(c.name, sa.Integer(), nullable=True) for c in _limits()],
        sa.Column("concurrent_requests", sa.Integer(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            name="fk_tenant_limits_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_limits"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("tenant_limits", schema=SCHEMA)
    op.drop_table("plans", schema=SCHEMA)
