"""Indexes for the admin usage report: a covering index over jobs by queue time, users by job count.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_usage",
        "jobs",
        ["queued_at", "requester_id", "kind", "status", "compute_seconds", "image_count", "queue_seconds"],
    )
    op.create_index("ix_users_jobs_total", "users", ["jobs_total"])


def downgrade() -> None:
    op.drop_index("ix_users_jobs_total", table_name="users")
    op.drop_index("ix_jobs_usage", table_name="jobs")
