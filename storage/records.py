"""Plain, immutable values the repositories return: safe to keep after the session is gone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"
    REMIX = "remix"  # a variation or re-roll whose prompt the member edited (Remix)
    REGION = "region"  # Vary (Region): part of one image generated again
    ZOOM = "zoom"  # Zoom Out: one image on a larger canvas
    PAN = "pan"  # one image extended on one side
    SQUARE = "square"  # Make Square: a wide or tall image made square
    DESCRIBE = "describe"  # /describe: four prompts read from a member's picture; it makes no images
    BLEND = "blend"  # /blend: four images mixing 2–5 of a member's pictures
    ENHANCE = "enhance"  # one image of a --draft grid made again at full quality, with its seed
    PROCESS = "process"  # 🔬 Process: one image's forward and reverse diffusion, shown as one picture
    ANIMATE = "animate"  # 🎞 Animate: a short video (MP4) from one image
    EXTEND = "extend"  # a video made longer from its last frame


# The kinds whose result is a video: an MP4 and its first frame as a PNG thumbnail.
VIDEO_KINDS = frozenset({JobKind.ANIMATE, JobKind.EXTEND})


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class FrontEnd(StrEnum):
    """Which front end started a job: after a restart each one resumes its own (`service.recovery`)."""

    DISCORD = "discord"
    WEB = "web"
    COMMAND_LINE = "cli"


class ButtonPolicy(StrEnum):
    """Who may press a job's U/V/🔄 buttons in a guild."""

    ANYONE = "anyone"
    OWNER = "owner"


class Window(StrEnum):
    """Periods the admin usage report covers; `ALL` is everything ever recorded."""

    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"
    ALL = "all"


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredFile:
    """A file an `ImageStore` holds: `key` is what the database keeps."""

    key: str
    sha256: str
    byte_size: int


@dataclass(frozen=True)
class GeneratedImage:
    """One image a job produced, as encoded bytes (PNG) plus what made it."""

    data: bytes
    seed: int
    width: int
    height: int
    suffix: str | None = None  # the stored file's suffix (".mp4" for a video); None: what `finish` is given


@dataclass(frozen=True)
class ImageRecord:
    job_id: str
    index: int
    seed: int
    width: int
    height: int
    storage_key: str
    sha256: str
    byte_size: int


@dataclass(frozen=True)
class UploadRecord:
    """A picture a member handed in (an image prompt): the file `storage_key` in the image store."""

    id: str
    owner_id: int
    created_at: datetime
    width: int
    height: int
    storage_key: str
    sha256: str
    byte_size: int


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: JobKind
    status: JobStatus
    prompt: str
    negative_prompt: str
    params: dict[str, Any]
    seed: int | None
    model: str | None
    requester_id: int
    owner_id: int
    parent_job_id: str | None
    parent_image_index: int | None
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    compute_seconds: float | None
    error: str | None
    deleted: bool = False
    images: tuple[ImageRecord, ...] = ()
    front_end: FrontEnd | None = None  # None: recorded before front ends were told apart, and not Discord's

    @property
    def queue_seconds(self) -> float | None:
        """Seconds between queueing and starting; None until it started."""
        if self.started_at is None:
            return None
        return (self.started_at - self.queued_at).total_seconds()


@dataclass(frozen=True)
class UserRecord:
    id: int
    display_name: str
    first_seen: datetime
    banned: bool
    defaults: dict[str, Any]


@dataclass(frozen=True)
class GuildSettings:
    """`daily_quota` None = unlimited; `blocklist` holds lower-case words or phrases."""

    guild_id: int
    daily_quota: int | None = None
    blocklist: tuple[str, ...] = ()
    button_policy: ButtonPolicy = ButtonPolicy.ANYONE


@dataclass(frozen=True)
class UserUsage:
    user_id: int
    display_name: str
    jobs: int
    images: int
    compute_seconds: float


@dataclass(frozen=True)
class UsageReport:
    """Admin usage for one window. Jobs count in the window they were queued in; usage is the requester's."""

    window: Window
    since: datetime | None  # None for Window.ALL
    jobs: int
    images: int
    compute_seconds: float
    jobs_by_kind: dict[JobKind, int]
    done: int
    failed: int
    cancelled: int
    mean_queue_seconds: float | None
    leaderboard: list[UserUsage]
    jobs_per_day: list[tuple[date, int]] = field(default_factory=list)

    @property
    def failure_rate(self) -> float | None:
        """Failed / (done + failed); None when nothing has finished."""
        finished = self.done + self.failed
        return self.failed / finished if finished else None
