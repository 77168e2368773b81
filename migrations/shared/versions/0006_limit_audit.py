"""rate limits: audit history of plan and tenant-override changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tf_shared"


def upgrade() -> None:
    op.create_table(
        "limit_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_limit_audit"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_limit_audit_kind_name_id",
        "limit_audit",
        ["kind", "name", sa.text("id DESC")],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_limit_audit_kind_name_id", table_name="limit_audit", schema=SCHEMA)
    op.drop_table("limit_audit", schema=SCHEMA)
