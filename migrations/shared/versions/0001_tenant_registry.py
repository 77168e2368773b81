"""tenant registry

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tf_shared"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schema_name", sa.String(63), nullable=False),
        sa.Column("plan", sa.String(20), nullable=False, server_default="free"),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("schema_revision", sa.String(64), nullable=True),
        sa.Column("database_key", sa.String(64), nullable=False, server_default="default"),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'deleting')", name="ck_tenants_status"
        ),
        sa.CheckConstraint("plan IN ('free', 'pro', 'enterprise')", name="ck_tenants_plan"),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sa.UniqueConstraint("schema_name", name="uq_tenants_schema_name"),
        schema=SCHEMA,
    )
    op.create_index("ix_tenants_status", "tenants", ["status"], schema=SCHEMA)
    op.create_index("ix_tenants_schema_revision", "tenants", ["schema_revision"], schema=SCHEMA)
    op.create_index("ix_tenants_created_at_id", "tenants", ["created_at", "id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("tenants", schema=SCHEMA)
