"""An index of jobs by owner and time: the web gallery lists the jobs a member owns or requested.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_owner", "jobs", ["owner_id", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner", table_name="jobs")
