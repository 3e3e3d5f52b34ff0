"""Restart recovery: jobs a previous process left queued or running are resumed, or failed with a notice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pipeline.editing import Edit
from pipeline.executor.base import ResumableExecutor, UnknownJob
from pipeline.request import GenerationRequest, Mode
from service.errors import JobGone
from service.jobs import BLEND, IMAGE_PROMPT, JobService, PendingJob, Reporter, job_tier, request_of
from storage.errors import IllegalTransition
from storage.errors import JobNotFound as StorageJobNotFound
from storage.records import FrontEnd, JobKind, JobRecord

log = logging.getLogger(__name__)


async def recover_unfinished(
    service: JobService,
    reporter_for: Callable[[JobRecord], Reporter],
    notify_lost: Callable[[JobRecord], Awaitable[None]],
    *,
    front_end: FrontEnd,
) -> list[JobRecord]:
    """Resume the jobs `front_end` started that a previous process left queued or running; returns those that
    could not be.

    An executor that keeps jobs across restarts (the worker fleet) is asked for each job first;
    otherwise, or when it does not know the job, the request is rebuilt from the record (a
    variation's or upscale's source image from its parent's stored image) and submitted again under
    the same id. `reporter_for(job)` says where it reports now (the bot: the job's channel, as
    interactions expire after 15 minutes; the web companion: the job's live page). A job that cannot be
    rebuilt (its parent or image is gone) is failed and announced through `notify_lost`.

    Each front end resumes only its own jobs, so a bot and a web companion over one database never both
    run the same one; the command line's are left alone (it may still be running them in its own process).
    """
    lost = []
    for job in await service.storage.jobs.unfinished(front_end):
        try:
            pending = await _resume(service, job)
        except Exception as error:
            log.warning("Job %s left by a previous process cannot be resumed: %s", job.id, error)
            failed = await _fail_lost(service, job, f"Kaika restarted and could not resume the job: {error}")
            if failed is None:
                continue
            lost.append(failed)
            try:
                await notify_lost(failed)
            except Exception:
                log.warning("Could not tell anyone about lost job %s", job.id, exc_info=True)
            continue
        pending.start(reporter_for(job))
    return lost


async def _resume(service: JobService, job: JobRecord) -> PendingJob:
    if isinstance(service.executor, ResumableExecutor):
        try:
            handle = await service.executor.attach(job.id)
        except UnknownJob:  # never submitted, or expired: run it again
            pass
        else:
            return service.resume(job, handle.request, handle=handle)
    request, copy_of = await _rebuild(service, job)
    if copy_of is not None:
        return service.resume(job, request, copy_of=copy_of)
    handle = await service.executor.submit(
        request, owner=str(job.requester_id), job_id=job.id, priority=job_tier(job)
    )
    return service.resume(job, request, handle=handle)


async def _rebuild(
    service: JobService, job: JobRecord
) -> tuple[GenerationRequest, tuple[JobRecord, int] | None]:
    """The request of a recorded job with its source image, or the parent image a U press copies."""
    request = request_of(job)
    # Enhance runs its own request (its parent's prompt at full quality), not the parent's image.
    if job.kind in (JobKind.IMAGINE, JobKind.REROLL, JobKind.ENHANCE, JobKind.PROCESS) or (
        job.kind is JobKind.REMIX and job.parent_image_index is None  # a re-roll with an edited prompt
    ):
        if IMAGE_PROMPT in job.params:  # drawn from a member's picture: the same picture again
            source = await service.image_prompt_source(job.params, request.width, request.height)
            return request.replace(source_image=source), None
        if BLEND in job.params:  # a /blend (or its 🔄): the same pictures mixed again
            source = await service.blend_source(job.params, request.width, request.height)
            return request.replace(source_image=source), None
        return request, None
    parent = await service.storage.jobs.get(job.parent_job_id) if job.parent_job_id else None
    index = job.parent_image_index
    if parent is None or index is None or not 0 <= index < len(parent.images):
        raise JobGone()
    if request.mode is Mode.TXT2IMG:  # a U press: the parent's image itself
        return request, (parent, index)
    if job.kind is JobKind.EXTEND:  # a video made longer: from its last frame again
        return request.replace(source_image=await service.last_frame(parent)), None
    source = await service.storage.images.get(parent.images[index].storage_key)
    edit = Edit.from_params(job.params)
    if edit is not None:  # Zoom Out, Pan, …: the same canvas and mask again
        return await service.edit_request(request, source, edit, seed=request.seed), None
    return request.replace(source_image=source), None


async def _fail_lost(service: JobService, job: JobRecord, message: str) -> JobRecord | None:
    try:
        return await service.storage.jobs.fail(job.id, message)
    except (IllegalTransition, StorageJobNotFound):  # ended or deleted meanwhile
        return None
