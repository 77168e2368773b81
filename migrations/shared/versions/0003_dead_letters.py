"""event pipeline: dead letters, and the outbox notification every tenant's outbox fires

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tf_shared"


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("handler", sa.String(100), nullable=False),
        sa.Column("envelope", postgresql.JSONB(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "failed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            name="fk_dead_letters_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        schema=SCHEMA,
    )
    op.create_index("ix_dead_letters_failed_at", "dead_letters", ["failed_at"], schema=SCHEMA)
    op.create_index(
        "ix_dead_letters_tenant_id_failed_at",
        "dead_letters",
        ["tenant_id", "failed_at"],
        schema=SCHEMA,
    )
    op.create_index("ix_dead_letters_event_type", "dead_letters", ["event_type"], schema=SCHEMA)
    # One notification per transaction that wrote events (PostgreSQL folds equal payloads of a
    # transaction into one), delivered at commit: the payload names the tenant's schema, so the
    # relay drains that tenant only.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tf_outbox', TG_TABLE_SCHEMA);
            RETURN NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.notify_outbox()")
    op.drop_table("dead_letters", schema=SCHEMA)
