"""event pipeline: outbox (also the event log), inbox, task counts projection and its state

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tenant schema: never name a schema; search_path is set to the tenant being migrated. The
# trigger function lives in the shared schema (shared migration 0003), which runs first.


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("aggregate_type", sa.String(32), nullable=False),
        sa.Column("aggregate_id", sa.Uuid(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("trace", postgresql.JSONB(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
    )
    op.create_index("uq_outbox_id", "outbox", ["id"], unique=True)
    op.create_index(
        "ix_outbox_undispatched_seq",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_index("ix_outbox_aggregate_seq", "outbox", ["aggregate_type", "aggregate_id", "seq"])
    op.create_index(
        "ix_outbox_unsettled_published_at",
        "outbox",
        ["dispatched_at"],
        postgresql_where=sa.text("dispatched_at IS NOT NULL AND settled_at IS NULL"),
    )
    op.create_index("ix_outbox_type_seq", "outbox", ["type", "seq"])
    op.create_index("ix_outbox_occurred_at", "outbox", ["occurred_at"])
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION tf_shared.notify_outbox()"
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("handler", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False, server_default="handled"),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", "handler", name="pk_inbox"),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.create_table(
        "project_task_counts",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("status_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(12), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_project_task_counts_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "status_id", name="pk_project_task_counts"),
    )
    op.create_table(
        "projection_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_projection_state"),
    )


def downgrade() -> None:
    op.drop_table("projection_state")
    op.drop_table("project_task_counts")
    op.drop_table("inbox")
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.drop_table("outbox")
