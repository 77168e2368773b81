"""feature flags: definitions, segments, tenant overrides, audit history, version

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tf_shared"


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by", sa.String(320), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "flags",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", postgresql.JSONB(), nullable=False),
        sa.Column("tenant_overridable", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        *_stamps(),
        sa.PrimaryKeyConstraint("name", name="pk_flags"),
        schema=SCHEMA,
    )
    op.create_table(
        "flag_segments",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", postgresql.JSONB(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_flag_segments"),
        schema=SCHEMA,
    )
    op.create_table(
        "flag_overrides",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            name="fk_flag_overrides_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["name"],
            [f"{SCHEMA}.flags.name"],
            name="fk_flag_overrides_name_flags",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_flag_overrides"),
        schema=SCHEMA,
    )
    op.create_table(
        "flag_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flag_audit"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_flag_audit_kind_name_id", "flag_audit", ["kind", "name", "id"], schema=SCHEMA
    )
    state = op.create_table(
        "flag_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flag_state"),
        schema=SCHEMA,
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("flag_state", schema=SCHEMA)
    op.drop_index("ix_flag_audit_kind_name_id", table_name="flag_audit", schema=SCHEMA)
    op.drop_table("flag_audit", schema=SCHEMA)
    op.drop_table("flag_overrides", schema=SCHEMA)
    op.drop_table("flag_segments", schema=SCHEMA)
    op.drop_table("flags", schema=SCHEMA)
