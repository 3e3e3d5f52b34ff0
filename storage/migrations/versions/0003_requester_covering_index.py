"""A user's jobs in time order, covering what quotas and leaderboards read from them.

Replaces ix_jobs_requester_id_queued_at: the same leading columns, plus status, image count and
compute seconds, so "my recent jobs", the quota count and the leaders' sums never touch the table
rows they skip.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_requester", "jobs", ["requester_id", "queued_at", "status", "image_count", "compute_seconds"]
    )
    op.drop_index("ix_jobs_requester_id_queued_at", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_requester_id_queued_at", "jobs", ["requester_id", "queued_at"])
    op.drop_index("ix_jobs_requester", table_name="jobs")
