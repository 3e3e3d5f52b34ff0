"""The web companion's sign-in: one-time sign-in links, and the members the bot saw with Manage Server.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signin_links_user_id_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_signin_links")),
    )
    op.create_index("ix_signin_links_expires_at", "signin_links", ["expires_at"])
    op.create_table(
        "server_managers",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_server_managers_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "guild_id", name=op.f("pk_server_managers")),
    )


def downgrade() -> None:
    op.drop_table("server_managers")
    op.drop_index("ix_signin_links_expires_at", table_name="signin_links")
    op.drop_table("signin_links")
