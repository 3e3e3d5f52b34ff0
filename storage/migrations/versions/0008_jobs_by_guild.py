"""An index of jobs by guild and time, covering the usage figures: a server's admin sees the figures of
their own servers' jobs only, read from this index rather than the whole jobs table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = [
    "guild_id",
    "queued_at",
    "requester_id",
    "kind",
    "status",
    "compute_seconds",
    "image_count",
    "queue_seconds",
]


def upgrade() -> None:
    op.create_index("ix_jobs_guild", "jobs", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_jobs_guild", table_name="jobs")
