"""Which front end started a job (discord, web, cli), so each one resumes its own jobs after a restart.

Jobs recorded before it: those with a channel are the bot's; the others stay unknown (NULL), which no front
end resumes (the command line's, until now, were told apart only by having no channel).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("front_end", sa.String(length=16), nullable=True))
    op.execute("UPDATE jobs SET front_end = 'discord' WHERE channel_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("front_end")
