"""What a job's message says while it waits and runs, and how often it may be edited."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import discord
from discord.utils import MISSING

from bot.limits import Part, fit
from bot.views import result_line, result_view
from pipeline.images import decode_image, encode_png, fit_to_bytes, upscale_for_display
from pipeline.video_files import fit_mp4
from service.jobs import Outcome
from storage.errors import StorageError

log = logging.getLogger(__name__)

BAR_WIDTH = 20
# A queue position moves every time a batch starts, for every waiting job at once: updating it at
# most this often keeps a long queue from turning into a storm of edits.
WAITING_EDIT_INTERVAL = 5.0
# Previews are rough and sent with many edits: half the result's display size keeps enlarging one
# cheap (it shares the CPU with the running job) while still showing the composition.
PREVIEW_MIN_SIDE = 256
# Discord's upload limit for a server without boosts; an interaction tells its own (`filesize_limit`).
UPLOAD_LIMIT = 10_000_000


# A job's status until its first report, on the messages of one prompt's several jobs.
QUEUED_TEXT = "Queued"


def waiting_text(position: int) -> str:
    return f"Waiting to start (position {position})"


def progress_text(step: int, total: int) -> str:
    """`[██████░░░░…] 30% (step 6/20)`; the bar has BAR_WIDTH cells."""
    total = max(total, 1)
    step = min(max(step, 0), total)
    filled = round(BAR_WIDTH * step / total)
    percent = round(100 * step / total)
    return f"`[{'█' * filled}{'░' * (BAR_WIDTH - filled)}]` {percent}% (step {step}/{total})"


class EditThrottle:
    """Allows one edit per `interval` seconds; the clock is injectable for tests."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        return self._last is None or self.clock() - self._last >= self.interval

    def mark(self) -> None:
        self._last = self.clock()


class JobMessage:
    """A job's Discord message: the interaction's original response, edited as the job advances.

    Implements `service.jobs.Reporter`. Progress edits are throttled to one per `interval` seconds,
    queue-position edits to one per WAITING_EDIT_INTERVAL; the final edit (grid + buttons, or the failure) always goes out. When the
    interaction token has expired (15 minutes), the result is posted to the channel instead.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        header: tuple[Part, ...],
        *,
        interval: float,
        storage: Any,
        job_id: str | None = None,
    ) -> None:
        self.interaction = interaction
        self._report_to(
            f"interaction {interaction.id}", header, interval, storage, interaction.filesize_limit, job_id
        )

    def _report_to(
        self,
        label: str,
        header: tuple[Part, ...],
        interval: float,
        storage: Any,
        limit: int,
        job_id: str | None = None,
    ) -> None:
        # With `job_id`, the message is linked to the job at its first edit: should a restart cut the job
        # short, the next start points this message at the job's new one (`ChannelJobMessage`).
        self.job_id = job_id
        self._linked = False
        self.label = label  # names the message in logs
        self.header = header  # parts of the first line, which every version of the message starts with
        self.throttle = EditThrottle(interval)
        self.waiting_throttle = EditThrottle(max(interval, WAITING_EDIT_INTERVAL))
        self.storage = storage
        self.limit = limit

    async def waiting(self, position: int) -> None:
        await self._progress_edit(self._content(waiting_text(position)), None, self.waiting_throttle)

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await self._progress_edit(self._content(progress_text(step, total)), preview_png, self.throttle)

    async def finished(self, outcome: Outcome) -> None:
        job = outcome.job
        single = len(outcome.images) == 1
        if outcome.video is not None:  # the MP4 Discord plays inline, and its first frame
            video = await asyncio.to_thread(fit_mp4, outcome.video, self.limit)  # this server's upload limit
            attachments = video_attachments(job.id, video, outcome.images[-1])
        else:
            data, extension = await asyncio.to_thread(fit_attachment, outcome.grid, self.limit)
            attachments = [discord.File(io.BytesIO(data), filename=f"kaika_{job.id}.{extension}")]
        view = result_view(job.id, len(outcome.images), outcome.offered, video=outcome.video is not None)
        content = self._content(result_line(job, single))
        message = await self._final_edit(content, attachments=attachments, view=view)
        if message is not None:
            try:
                await self.storage.jobs.set_message(job.id, message.id, message.channel.id)
            except StorageError as error:  # deleted meanwhile: the message stands, its buttons answer "gone"
                log.info("Could not link job %s to its message: %s", job.id, error)

    async def failed(self, message: str) -> None:
        await self._final_edit(self._content(f"❌ {message}"), attachments=[], view=None)

    def _content(self, status: str) -> str:
        """The header and the job's state under it, the prompt shortened should the two be too long."""
        return fit(*self.header, "\n", status)

    @property
    def channel(self) -> Any:
        return self.interaction.channel

    async def _edit(self, **fields: Any) -> discord.Message:
        return await self.interaction.edit_original_response(**fields)

    async def _progress_edit(self, content: str, preview_png: bytes | None, throttle: EditThrottle) -> None:
        if not throttle.ready():
            return
        throttle.mark()
        attachments = MISSING
        if preview_png:
            preview = await asyncio.to_thread(enlarged_preview, preview_png)
            attachments = [discord.File(io.BytesIO(preview), filename="preview.png")]
        try:
            message = await self._edit(content=content, attachments=attachments)
        except discord.HTTPException as error:
            # Progress is best effort: the next edit (or the result) carries the news.
            log.warning("Progress edit of %s failed: %s", self.label, error)
            return
        await self._link(message)

    async def _link(self, message: discord.Message) -> None:
        if self.job_id is None or self._linked:
            return
        self._linked = True
        try:
            await self.storage.jobs.set_message(self.job_id, message.id, message.channel.id)
        except StorageError as error:  # best effort: only a restart's pointer to the new message needs it
            log.info("Could not link job %s to its message: %s", self.job_id, error)

    async def _final_edit(
        self, content: str, *, attachments: list[discord.File], view: discord.ui.View | None
    ) -> discord.Message | None:
        try:
            return await self._edit(content=content, attachments=attachments, view=view)
        except (discord.NotFound, discord.Forbidden) as error:
            log.info("%s is gone or expired (%s); posting to the channel", self.label, error)
        except discord.HTTPException as error:
            if error.status != 401:
                raise
        channel = self.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return None
        for file in attachments:
            file.reset()
        return await channel.send(content, files=attachments, view=view or MISSING)


def video_attachments(job_id: str, mp4: bytes, thumbnail_png: bytes) -> list[discord.File]:
    """A video job's files: its MP4 (already within VIDEO_MAX_MB) and its first frame as a PNG thumbnail."""
    return [
        discord.File(io.BytesIO(mp4), filename=f"kaika_{job_id}.mp4"),
        discord.File(io.BytesIO(thumbnail_png), filename=f"kaika_{job_id}_thumbnail.png"),
    ]


class FollowupJobMessage(JobMessage):
    """Another job of the same /imagine (--repeat, {a, b} permutations): a follow-up `message` of the
    interaction (already sent), edited as the job advances."""

    def __init__(
        self,
        interaction: discord.Interaction,
        message: discord.WebhookMessage,
        header: tuple[Part, ...],
        *,
        interval: float,
        storage: Any,
        job_id: str | None = None,
    ) -> None:
        super().__init__(interaction, header, interval=interval, storage=storage, job_id=job_id)
        self.label = f"follow-up {message.id} of interaction {interaction.id}"
        self.message = message

    async def _edit(self, **fields: Any) -> discord.Message:
        self.message = await self.message.edit(**fields)
        return self.message


class ChannelJobMessage(JobMessage):
    """A job resumed after a restart: its interaction has expired, so the job's message is posted
    to its channel (at the first report) and edited there from then on."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        job_id: str,
        header: tuple[Part, ...],
        *,
        interval: float,
        storage: Any,
        limit: int = UPLOAD_LIMIT,
        previous_message_id: int | None = None,
    ) -> None:
        self._channel = channel
        self._report_to(f"the channel message of job {job_id}", header, interval, storage, limit, job_id)
        self.message: discord.Message | None = None
        self.previous_message_id = previous_message_id  # the message the job showed before the restart

    @property
    def channel(self) -> Any:
        return self._channel

    async def _edit(self, **fields: Any) -> discord.Message:
        if self.message is None:
            files = fields.get("attachments") or MISSING
            self.message = await self._channel.send(
                fields["content"], files=files, view=fields.get("view") or MISSING
            )
            await self._point_previous_message_here(self.message)
        else:
            self.message = await self.message.edit(**fields)
        return self.message

    async def _point_previous_message_here(self, message: discord.Message) -> None:
        """The message the job showed before the restart would stay at its last progress forever: it now
        says where the job went on. Best effort: it may be gone."""
        if self.previous_message_id is None or not hasattr(self._channel, "get_partial_message"):
            return
        previous = self._channel.get_partial_message(self.previous_message_id)
        try:
            await previous.edit(
                content=self._content(moved_text(message.jump_url)), attachments=[], view=None
            )
        except discord.HTTPException as error:
            log.info("Could not point %s's earlier message at its new one: %s", self.label, error)


def moved_text(url: str) -> str:
    return f"↪️ Kaika restarted; this job went on in a new message: {url}"


def enlarged_preview(preview_png: bytes) -> bytes:
    """The executor's latent-resolution preview enlarged so Discord shows more than a speck; runs in a worker thread."""
    return encode_png(upscale_for_display(decode_image(preview_png), PREVIEW_MIN_SIDE))


def fit_attachment(data: bytes, limit: int) -> tuple[bytes, str]:
    """`data` (PNG) if it fits the upload limit, else re-encoded to fit; runs in a worker thread."""
    if len(data) <= limit:
        return data, "png"
    return fit_to_bytes(decode_image(data), limit)
