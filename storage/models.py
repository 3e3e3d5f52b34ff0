"""ORM tables. Change them only together with a new migration in storage/migrations/versions/.

Times are stored as naive UTC (SQLite has no time zones) and come back as aware UTC datetimes.
Discord ids are 64-bit snowflakes, hence BigInteger everywhere an id is kept.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the column."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("storage needs aware datetimes (use datetime.now(UTC))")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    defaults: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Lifetime usage as requester, kept in step with jobs so the all-time leaderboard is an index read.
    jobs_total: Mapped[int] = mapped_column(Integer, default=0)
    images_total: Mapped[int] = mapped_column(Integer, default=0)
    compute_seconds_total: Mapped[float] = mapped_column(Float, default=0.0)
    # A web sign-in carries the number current when it was made; "Sign out everywhere" counts it up, which
    # ends every sign-in made before.
    web_sessions_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_users_jobs_total", "jobs_total"),)


class Guild(Base):
    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    blocklist: Mapped[list[str]] = mapped_column(JSON, default=list)
    button_policy: Mapped[str] = mapped_column(String(16), default="anyone")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text, default="")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(255))
    requester_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    parent_job_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("jobs.id"))
    parent_image_index: Mapped[int | None] = mapped_column(Integer)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    front_end: Mapped[str | None] = mapped_column(String(16))  # storage.records.FrontEnd (revision 0007)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    queue_seconds: Mapped[float | None] = mapped_column(Float)
    compute_seconds: Mapped[float | None] = mapped_column(Float)
    image_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    images: Mapped[list[Image]] = relationship(
        back_populates="job", order_by="Image.index", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        # Covers a user's recent jobs, quota count and leaderboard sums (revision 0003).
        Index("ix_jobs_requester", "requester_id", "queued_at", "status", "image_count", "compute_seconds"),
        Index("ix_jobs_owner", "owner_id", "queued_at"),  # the web gallery (revision 0006)
        # Covers the usage figures of some guilds' jobs, which a server's admin sees (revision 0008).
        Index(
            "ix_jobs_guild",
            "guild_id",
            "queued_at",
            "requester_id",
            "kind",
            "status",
            "compute_seconds",
            "image_count",
            "queue_seconds",
        ),
        Index("ix_jobs_message_id", "message_id"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_parent_job_id", "parent_job_id"),
        # Covers every windowed usage query (added by revision 0002).
        Index(
            "ix_jobs_usage",
            "queued_at",
            "requester_id",
            "kind",
            "status",
            "compute_seconds",
            "image_count",
            "queue_seconds",
        ),
    )


class Image(Base):
    __tablename__ = "images"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seed: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    byte_size: Mapped[int] = mapped_column(BigInteger)

    job: Mapped[Job] = relationship(back_populates="images")

    __table_args__ = (Index("ix_images_storage_key", "storage_key"),)


class Upload(Base):
    """A picture a member handed in (an image prompt), kept in the image store and counted as theirs."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    byte_size: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_uploads_storage_key", "storage_key"),
        Index("ix_uploads_owner_id", "owner_id", "created_at"),
    )


class UsageDaily(Base):
    """Per UTC day (of queueing) and kind: running totals kept in step with jobs, for all-time reports."""

    __tablename__ = "usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    jobs: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    images: Mapped[int] = mapped_column(Integer, default=0)
    compute_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    queue_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class SigninLink(Base):
    """A one-time sign-in link to the web companion: only the SHA-256 of its token is kept."""

    __tablename__ = "signin_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_signin_links_expires_at", "expires_at"),)


class ServerManager(Base):
    """A member the bot last saw with Manage Server in a guild (an admin of Kaika there, and on the web)."""

    __tablename__ = "server_managers"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
