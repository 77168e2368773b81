"""outbox read indexes: the live feed's resume and the relay's unpublished rows

- ix_outbox_published_at_seq: a client resuming the live feed with ``last_event_id`` reads the
  events published after it, in (published_at, seq) order; without it every resume sorted the
  tenant's whole outbox (all events of the retention window).
- ix_outbox_unpublished_seq: rows committed and not yet published (transient, so a small
  index): the relay's search for new rows behind a backlog of handler work, and the resume's
  read of events the relay has not marked yet, no longer walk the backlog.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tenant schema: never name a schema; search_path is set to the tenant being migrated.


def upgrade() -> None:
    op.create_index("ix_outbox_published_at_seq", "outbox", ["published_at", "seq"])
    op.create_index(
        "ix_outbox_unpublished_seq",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished_seq", table_name="outbox")
    op.drop_index("ix_outbox_published_at_seq", table_name="outbox")
