"""Ending a member's web sign-ins from the server: the number each sign-in carries, counted up by "Sign out
everywhere" (`users.web_sessions_generation`; 0 for everyone until then, which every existing sign-in matches).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("web_sessions_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("web_sessions_generation")
