"""The job service: record → run → store → report, for /imagine, the buttons and the command line.

It knows nothing of discord.py: where a job's progress and result go is a `Reporter`, which the
bot implements with an interaction's message and a test or the CLI with anything else.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pipeline.errors import PipelineError, QueueFull
from pipeline.executor.base import Cancelled, Executor, Failed, Finished, JobHandle, Queued, Started, Step
from pipeline.images import display_grid, encode_png, image_metadata
from pipeline.prompt import PromptDefaults, parse_prompt
from pipeline.request import (
    GenerationRequest,
    GenerationResult,
    Limits,
    Mode,
    upscale_request,
    variation_request,
)
from storage import Storage
from storage.errors import IllegalTransition
from storage.errors import JobNotFound as StorageJobNotFound
from storage.records import ButtonPolicy, GeneratedImage, GuildSettings, JobKind, JobRecord, JobStatus

log = logging.getLogger(__name__)

# The request fields a job's `params` keep, so a button can rebuild the request later.
REQUEST_PARAMS = ("width", "height", "steps", "guidance", "num_images", "mode", "strength", "chaos")


class UserError(Exception):
    """Base of the bot's own errors a user can cause; `str(error)` is shown to them."""


class BlockedPrompt(UserError):
    """The prompt contains a term on the guild's blocklist."""

    def __init__(self, term: str) -> None:
        super().__init__(f"Your prompt contains the blocked term '{term}'; remove it and try again.")
        self.term = term


class NotAllowed(UserError):
    """The user may not do this (press another owner's buttons where only owners may, admin commands)."""


class JobGone(UserError):
    def __init__(self) -> None:
        super().__init__("This job no longer exists.")


class ButtonAction(StrEnum):
    """What a pressed button asks for; the values are the custom_id's action field."""

    UPSCALE = "u"  # U1–U4: the grid's image alone at full size
    VARY = "v"  # V1–V4: four variations of a grid's image
    REROLL = "r"  # 🔄: the same prompt with a new seed
    VARY_SUBTLE = "vs"
    VARY_STRONG = "vx"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"


@dataclass(frozen=True)
class Requester:
    user_id: int
    name: str
    is_admin: bool = False


@dataclass(frozen=True)
class Place:
    """Where a job was asked for; its result and any restart notice go there."""

    guild_id: int | None
    channel_id: int | None


@dataclass(frozen=True)
class Outcome:
    """A finished job as the reporter shows it: the record, its images and a grid of them (PNG bytes).

    `result` is what the executor returned (None for a U press, which copies a stored image).
    """

    job: JobRecord
    images: list[bytes]
    grid: bytes
    result: GenerationResult | None = None


class Reporter(Protocol):
    """Where one job's progress and result are shown."""

    async def waiting(self, position: int) -> None: ...

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None: ...

    async def finished(self, outcome: Outcome) -> None: ...

    async def failed(self, message: str) -> None: ...


def request_params(request: GenerationRequest) -> dict[str, Any]:
    return {name: (str(v) if isinstance(v := getattr(request, name), Mode) else v) for name in REQUEST_PARAMS}


def request_of(job: JobRecord) -> GenerationRequest:
    """The request a job ran (without its source image), rebuilt from what storage kept."""
    params = dict(job.params)
    params["mode"] = Mode(params.get("mode", Mode.TXT2IMG))
    return GenerationRequest(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seed=job.seed or 0,
        model=job.model,
        **{k: v for k, v in params.items() if k in REQUEST_PARAMS},
    )


def blocked_term(prompt: str, blocklist: Collection[str]) -> str | None:
    """The first blocklist entry the prompt contains as whole words (case-insensitive), if any."""
    words = " " + " ".join("".join(c if c.isalnum() else " " for c in prompt.lower()).split()) + " "
    for term in blocklist:
        normalised = " ".join("".join(c if c.isalnum() else " " for c in term.lower()).split())
        if normalised and f" {normalised} " in words:
            return term
    return None


class JobService:
    def __init__(
        self,
        storage: Storage,
        executor: Executor,
        *,
        limits: Limits | None = None,
        defaults: PromptDefaults | None = None,
        models: Collection[str] | None = None,
        max_queue: int = 100,
        max_jobs_per_user: int = 2,
        seed_source: random.Random | None = None,
    ) -> None:
        self.storage = storage
        self.executor = executor
        self.limits = limits or Limits()
        self.defaults = defaults or PromptDefaults()
        self.models = models  # the names --model accepts; None: the executor's `model_names`
        self.max_queue = max_queue
        self.max_jobs_per_user = max_jobs_per_user
        self.seeds = seed_source or random.Random()
        self._in_flight: dict[int, int] = {}  # user id → jobs queued or running
        self._tasks: set[asyncio.Task[None]] = set()
        self._handles: set[JobHandle] = set()  # submitted and not yet ended
        self._closed = False

    # ---- checks (fast: they run before the interaction is acknowledged) ----------------------------

    def parse(self, text: str) -> GenerationRequest:
        """/imagine text → a validated request; raises RequestError naming the bad flag."""
        return parse_prompt(
            text,
            native_size=self.executor.native_size,
            defaults=self.defaults,
            limits=self.limits,
            seed_source=self.seeds,
            # The executor's list is read each time (fleet workers announce theirs after the bot
            # starts); an empty one (no worker yet) leaves the name to the executor.
            models=self.models if self.models is not None else (self.executor.model_names or None),
        )

    def check_capacity(self, requester: Requester) -> None:
        if self.executor.queue_depth() >= self.max_queue:
            raise QueueFull(f"The queue is full ({self.max_queue} jobs); try again in a few minutes.")
        if self._in_flight.get(requester.user_id, 0) >= self.max_jobs_per_user:
            raise QueueFull(
                f"You already have {self.max_jobs_per_user} jobs queued or running; wait for one to finish."
            )

    def in_flight(self, user_id: int) -> int:
        """Jobs of `user_id` this service has queued or running now."""
        return self._in_flight.get(user_id, 0)

    async def guild_settings(self, guild_id: int | None) -> GuildSettings:
        return await self.storage.guilds.settings(guild_id or 0)

    # ---- starting jobs -----------------------------------------------------------------------------

    async def imagine(self, requester: Requester, place: Place, request: GenerationRequest) -> PendingJob:
        """Check and record an /imagine; raises the user's error (nothing recorded) or returns the job to run."""
        settings = await self.guild_settings(place.guild_id)
        term = blocked_term(f"{request.prompt} {request.negative_prompt}", settings.blocklist)
        if term is not None:
            raise BlockedPrompt(term)
        self.check_capacity(requester)
        job = await self.storage.jobs.create(
            JobKind.IMAGINE,
            requester.user_id,
            requester_name=requester.name,
            daily_quota=None if requester.is_admin else settings.daily_quota,
            guild_id=place.guild_id,
            channel_id=place.channel_id,
            **self._job_fields(request),
        )
        return PendingJob(self, job, request, requester, await self._submit(job, request, requester))

    async def _submit(self, job: JobRecord, request: GenerationRequest, requester: Requester) -> JobHandle:
        """Queue a recorded job; if the executor refuses it, the record is marked failed and the error raised."""
        try:
            handle = await self.executor.submit(request, owner=str(requester.user_id), job_id=job.id)
        except PipelineError as error:
            # Failed, not cancelled: a refused job must not count against the user's quota.
            await self.storage.jobs.fail(job.id, f"not queued: {error}")
            raise
        self._handles.add(handle)
        return handle

    async def press(
        self, requester: Requester, place: Place, action: ButtonAction, parent_id: str, index: int
    ) -> PendingJob:
        """Check and record the job a button on job `parent_id` asks for.

        Raises JobGone for a job that does not exist (deleted, forged id) or has no such image,
        NotAllowed where the guild lets only owners press buttons, and the errors of `imagine`.
        """
        parent = await self.storage.jobs.get(parent_id)
        if parent is None:
            raise JobGone()
        if action is not ButtonAction.REROLL and not 0 <= index < len(parent.images):
            raise JobGone()
        settings = await self.guild_settings(place.guild_id)
        # Terms blocked since the parent ran are refused on its buttons too.
        term = blocked_term(f"{parent.prompt} {parent.negative_prompt}", settings.blocklist)
        if term is not None:
            raise BlockedPrompt(term)
        if (
            settings.button_policy is ButtonPolicy.OWNER
            and requester.user_id != parent.owner_id
            and not requester.is_admin
        ):
            raise NotAllowed(f"Only the owner of this image, <@{parent.owner_id}>, can use its buttons in this server.")
        self.check_capacity(requester)
        parent_request = request_of(parent)
        kind, request = await self._derive(action, parent, parent_request, index)
        job = await self.storage.jobs.create(
            kind,
            requester.user_id,
            requester_name=requester.name,
            daily_quota=None if requester.is_admin else settings.daily_quota,
            guild_id=place.guild_id,
            channel_id=place.channel_id,
            parent_job_id=parent.id,
            parent_image_index=None if kind is JobKind.REROLL else index,
            **self._job_fields(request),
        )
        if action is ButtonAction.UPSCALE:
            return PendingJob(self, job, request, requester, copy_of=(parent, index))
        return PendingJob(self, job, request, requester, await self._submit(job, request, requester))

    async def _derive(
        self, action: ButtonAction, parent: JobRecord, parent_request: GenerationRequest, index: int
    ) -> tuple[JobKind, GenerationRequest]:
        if action is ButtonAction.REROLL:
            return JobKind.REROLL, parent_request.replace(seed=self.seeds.randrange(2**32), num_images=4)
        image = parent.images[index]
        if action is ButtonAction.UPSCALE:
            # U: the image itself, alone; no generation (as Midjourney's U buttons).
            return JobKind.UPSCALE, parent_request.replace(
                seed=image.seed, num_images=1, width=image.width, height=image.height, mode=Mode.TXT2IMG
            )
        source = await self.storage.images.get(image.storage_key)
        if action in (ButtonAction.VARY, ButtonAction.VARY_STRONG, ButtonAction.VARY_SUBTLE):
            single = parent_request.replace(width=image.width, height=image.height)
            strong = action is not ButtonAction.VARY_SUBTLE
            return JobKind.VARIATION, variation_request(
                single, source, seed=self.seeds.randrange(2**32), strong=strong
            )
        single = parent_request.replace(width=image.width, height=image.height, seed=image.seed)
        return JobKind.UPSCALE, upscale_request(single, source, creative=action is ButtonAction.UPSCALE_CREATIVE)

    def _job_fields(self, request: GenerationRequest) -> dict[str, Any]:
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "params": request_params(request),
            "seed": request.seed,
            "model": request.model,
        }

    # ---- running -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait until every job this service started has been reported."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def executor_keeps_jobs(self) -> bool:
        """Whether jobs outlive this process in the executor (the worker fleet), to be re-attached later."""
        return hasattr(self.executor, "attach")

    async def close(self) -> None:
        """Stop following jobs; stop the executor working on them unless it keeps them (`attach`).

        Their records stay queued or running, so the next start resumes them and reports to their
        channels (see `recover_unfinished`) rather than this process editing messages on its way out.
        """
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self.executor_keeps_jobs:
            for handle in list(self._handles):
                await handle.cancel()
        self._handles.clear()

    async def _run(self, pending: PendingJob, reporter: Reporter) -> None:
        job = pending.job
        user = pending.requester.user_id
        try:
            if pending.handle is None:
                await self._copy(pending, reporter)
            else:
                await self._follow(job, pending.handle, reporter)
                self._handles.discard(pending.handle)
        except asyncio.CancelledError:
            raise
        except (IllegalTransition, StorageJobNotFound):
            # Deleted (so cancelled) while it ran: stop the work and say so.
            if pending.handle is not None:
                await pending.handle.cancel()
                self._handles.discard(pending.handle)
            await _report_quietly(reporter.failed("This job was deleted."))
        except Exception as error:
            log.exception("Job %s failed in the bot", job.id)
            await self._fail_quietly(job.id, f"{type(error).__name__}: {error}")
            await _report_quietly(reporter.failed("Kaika could not finish this job; the error has been logged."))
        finally:
            self._in_flight[user] = self._in_flight.get(user, 1) - 1
            if self._in_flight[user] <= 0:
                self._in_flight.pop(user, None)

    async def _follow(self, job: JobRecord, handle: JobHandle, reporter: Reporter) -> None:
        # A job resumed after a restart may be recorded as running already.
        started = job.status is JobStatus.RUNNING
        async for event in handle.events():
            if isinstance(event, Queued):
                await reporter.waiting(event.position)
            elif isinstance(event, Started):
                started = await self._start(job, started)
                await reporter.progress(0, handle.request.steps, None)
            elif isinstance(event, Step):
                started = await self._start(job, started)
                await reporter.progress(event.step, event.total, event.preview_png)
            elif isinstance(event, Finished):
                started = await self._start(job, started)
                outcome = await self._store(job, event.result)
                await reporter.finished(outcome)
            elif isinstance(event, Failed):
                await self.storage.jobs.fail(job.id, event.message)
                await reporter.failed(f"The job failed: {event.message}")
            elif isinstance(event, Cancelled):
                await self.storage.jobs.cancel(job.id)
                await reporter.failed("The job was cancelled.")

    async def delete(self, job_id: str, requester: Requester) -> JobRecord:
        """Delete a job for its owner or an admin (storage's rule), stopping it if it is still running."""
        deleted = await self.storage.jobs.delete(job_id, requester.user_id, is_admin=requester.is_admin)
        for handle in list(self._handles):
            if handle.job_id == deleted.id:
                await handle.cancel()
        return deleted

    async def _start(self, job: JobRecord, started: bool) -> bool:
        if not started:
            await self.storage.jobs.start(job.id)
        return True

    async def _store(self, job: JobRecord, result: GenerationResult) -> Outcome:
        request = request_of(job)
        encoded = await asyncio.to_thread(_encode_result, request, result, job.id)
        images = [
            GeneratedImage(data=data, seed=seed, width=image.width, height=image.height)
            for data, seed, image in zip(encoded.images, result.seeds, result.images, strict=True)
        ]
        done = await self.storage.jobs.finish(job.id, images, result.timings.compute_seconds)
        return Outcome(done, encoded.images, encoded.grid, result)

    async def _copy(self, pending: PendingJob, reporter: Reporter) -> None:
        assert pending.copy_of is not None
        parent, index = pending.copy_of
        image = parent.images[index]
        data = await self.storage.images.get(image.storage_key)
        await self._start(pending.job, pending.job.status is JobStatus.RUNNING)
        done = await self.storage.jobs.finish(
            pending.job.id, [GeneratedImage(data=data, seed=image.seed, width=image.width, height=image.height)], 0.0
        )
        await reporter.finished(Outcome(done, [data], data))

    async def _fail_quietly(self, job_id: str, message: str) -> None:
        try:
            await self.storage.jobs.fail(job_id, message)
        except Exception:
            log.warning("Could not mark job %s failed", job_id, exc_info=True)

    # ---- start-up ----------------------------------------------------------------------------------

    async def recover_unfinished(
        self,
        reporter_for: Callable[[JobRecord], Reporter],
        notify_lost: Callable[[JobRecord], Awaitable[None]],
    ) -> list[JobRecord]:
        """Resume the jobs a previous process left queued or running; returns those that could not be.

        An executor that keeps jobs across restarts (the worker fleet's `attach`) is asked for each
        job first; otherwise, or when it does not know the job, the request is rebuilt from the record
        (a variation's or upscale's source image from its parent's stored image) and submitted again
        under the same id. Interactions expire after 15 minutes, so `reporter_for(job)` reports to the
        job's channel. A job that cannot be rebuilt (its parent or image is gone) is failed and
        announced through `notify_lost`. Jobs without a channel are the command line's, which may
        still be running them in its own process: they are left alone.
        """
        lost = []
        for job in await self.storage.jobs.unfinished():
            if job.channel_id is None:
                continue
            try:
                pending = await self._resume(job)
            except Exception as error:
                log.warning("Job %s left by a previous process cannot be resumed: %s", job.id, error)
                failed = await self._fail_lost(job, f"Kaika restarted and could not resume the job: {error}")
                if failed is None:
                    continue
                lost.append(failed)
                try:
                    await notify_lost(failed)
                except Exception:
                    log.warning("Could not tell channel %s about lost job %s", job.channel_id, job.id, exc_info=True)
                continue
            pending.start(reporter_for(job))
        return lost

    async def _resume(self, job: JobRecord) -> PendingJob:
        requester = Requester(job.requester_id, "")
        if self.executor_keeps_jobs:
            try:
                handle = await self.executor.attach(job.id)  # type: ignore[attr-defined]
            except LookupError:  # the fleet's UnknownJob: never submitted, or expired; run it again
                pass
            else:
                self._handles.add(handle)
                return PendingJob(self, job, handle.request, requester, handle)
        request, copy_of = await self._rebuild(job)
        if copy_of is not None:
            return PendingJob(self, job, request, requester, copy_of=copy_of)
        handle = await self.executor.submit(request, owner=str(job.requester_id), job_id=job.id)
        self._handles.add(handle)
        return PendingJob(self, job, request, requester, handle)

    async def _rebuild(self, job: JobRecord) -> tuple[GenerationRequest, tuple[JobRecord, int] | None]:
        """The request of a recorded job with its source image, or the parent image a U press copies."""
        request = request_of(job)
        if job.kind is JobKind.IMAGINE or job.kind is JobKind.REROLL:
            return request, None
        parent = await self.storage.jobs.get(job.parent_job_id) if job.parent_job_id else None
        index = job.parent_image_index
        if parent is None or index is None or not 0 <= index < len(parent.images):
            raise JobGone()
        if request.mode is Mode.TXT2IMG:  # a U press: the parent's image itself
            return request, (parent, index)
        source = await self.storage.images.get(parent.images[index].storage_key)
        return request.replace(source_image=source), None

    async def _fail_lost(self, job: JobRecord, message: str) -> JobRecord | None:
        try:
            return await self.storage.jobs.fail(job.id, message)
        except (IllegalTransition, StorageJobNotFound):  # ended or deleted meanwhile
            return None


@dataclass
class PendingJob:
    """A recorded job not yet running: `start(reporter)` hands it to the executor."""

    service: JobService
    job: JobRecord
    request: GenerationRequest
    requester: Requester
    handle: JobHandle | None = None  # None for a U press: the image is copied, not generated
    copy_of: tuple[JobRecord, int] | None = None

    def __post_init__(self) -> None:
        user = self.requester.user_id
        self.service._in_flight[user] = self.service._in_flight.get(user, 0) + 1

    def start(self, reporter: Reporter) -> asyncio.Task[None] | None:
        """Follow the job, reporting to `reporter`; None when the service is closing (the job stays recorded)."""
        if self.service._closed:
            if self.handle is not None:
                self.service._spawn(self.handle.cancel())
            return None
        return self.service._spawn(self.service._run(self, reporter))


@dataclass(frozen=True)
class _Encoded:
    images: list[bytes]
    grid: bytes


def _encode_result(request: GenerationRequest, result: GenerationResult, job_id: str) -> _Encoded:
    """PNG bytes of every image (with its metadata) and of the 2x2 grid; runs in a worker thread."""
    images = [
        encode_png(image, image_metadata(request, seed=seed, model_id=result.model_id, job_id=job_id))
        for image, seed in zip(result.images, result.seeds, strict=True)
    ]
    grid = images[0] if len(images) == 1 else encode_png(display_grid(result.images))
    return _Encoded(images, grid)


async def _report_quietly(call: Awaitable[None]) -> None:
    try:
        await call
    except Exception:
        log.warning("Could not report a failure", exc_info=True)
