"""Jobs: creation with the ownership rule, the status lifecycle, images, lineage and deletion."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.database import Database, storage_errors
from storage.errors import (
    IllegalTransition,
    InvalidParent,
    InvalidValue,
    JobNotFound,
    NotAllowed,
    QuotaExceeded,
    UserBanned,
    parse_choice,
)
from storage.images import ImageStore
from storage.models import Image, Job, UsageDaily, User
from storage.records import (
    VIDEO_KINDS,
    FrontEnd,
    GeneratedImage,
    ImageRecord,
    JobKind,
    JobRecord,
    JobStatus,
)

log = logging.getLogger(__name__)

# The user the command line records its jobs under (Discord ids are never 0).
LOCAL_USER_ID = 0
# Deleted jobs' files younger than this are left to the orphan sweep: identical bytes may be being
# stored for another job right now, and its row must never end up pointing at nothing.
DELETE_GRACE = timedelta(hours=1)

# Which statuses each status may be reached from; anything else raises IllegalTransition.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED}),
    JobStatus.DONE: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.RUNNING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.RUNNING}),
}


def new_job_id() -> str:
    """12 URL-safe characters (72 random bits): short enough for a Discord custom_id."""
    return secrets.token_urlsafe(9)


# The kinds made from one image of their parent job, so they record its index.
IMAGE_KINDS = frozenset(
    {
        JobKind.UPSCALE,
        JobKind.VARIATION,
        JobKind.REGION,
        JobKind.ZOOM,
        JobKind.PAN,
        JobKind.SQUARE,
        JobKind.ENHANCE,
        JobKind.PROCESS,
        JobKind.ANIMATE,
        JobKind.EXTEND,
    }
)


def decide_owner(kind: JobKind, requester_id: int, parent_owner_id: int | None) -> int:
    """The ownership rule, in one place.

    Whoever runs /imagine, a re-roll, a variation or an edit (Vary Region, Zoom Out, Pan, Make Square)
    owns the new job. An upscale stays with the
    owner of the image it enlarges, even when someone else pressed the button (as Midjourney's
    terms have it); the presser is recorded as the requester. Every job also keeps its parent and
    image index, so `JobRepository.lineage` walks any image back to its /imagine.
    """
    if kind is JobKind.UPSCALE:
        if parent_owner_id is None:
            raise InvalidParent("An upscale needs the image it enlarges.")
        return parent_owner_id
    return requester_id


class JobRepository:
    """Reached as `storage.jobs`. Every method is a coroutine; records come back as `JobRecord`."""

    def __init__(
        self,
        db: Database,
        images: ImageStore,
        new_id: Callable[[], str] = new_job_id,
        video_quota_weight: int = 1,
    ) -> None:
        self._db = db
        self._images = images
        self._new_id = new_id
        # How many jobs of a daily quota one video job (`VIDEO_KINDS`) counts for (VIDEO_QUOTA_WEIGHT).
        self.video_quota_weight = video_quota_weight

    # --- creating ---

    async def create(
        self,
        kind: JobKind | str,
        requester_id: int,
        *,
        prompt: str = "",
        negative_prompt: str = "",
        params: dict[str, Any] | None = None,
        seed: int | None = None,
        model: str | None = None,
        parent_job_id: str | None = None,
        parent_image_index: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        front_end: FrontEnd | None = None,
        requester_name: str | None = None,
        daily_quota: int | None = None,
    ) -> JobRecord:
        """Record a queued job; its owner follows `decide_owner`.

        `imagine` takes no parent; `reroll` names its parent job; every other kind (`upscale`,
        `variation`, `region`, `zoom`, `pan`, `square`) names the parent job and the index of its image
        (the parent must be done and have that image).
        With `daily_quota`, raises QuotaExceeded when the requester already has that many jobs in
        the last 24 h (see `jobs_last_24h`). Raises UserBanned, InvalidParent, InvalidValue.
        `requester_name` updates the user's display name (the user row is created when new).
        """
        kind = parse_choice(JobKind, kind, "job kind")
        parent_needed = kind not in (JobKind.IMAGINE, JobKind.DESCRIBE, JobKind.BLEND)
        if parent_needed != (parent_job_id is not None):
            raise InvalidParent(
                f"{_a(kind)} {kind} job needs the job it comes from."
                if parent_needed
                else f"{_a(kind)} {kind} job has no parent."
            )
        index_needed = kind in IMAGE_KINDS
        # A remix names the image it varies, or none when it re-rolls the prompt.
        if kind is not JobKind.REMIX and index_needed != (parent_image_index is not None):
            raise InvalidParent(
                f"{_a(kind)} {kind} job needs the index of the image it starts from."
                if index_needed
                else f"{_a(kind)} {kind} job does not take an image index."
            )
        now = self._db.now()
        async with self._db.write() as session:
            user = await session.get(User, requester_id)
            if user is not None and user.banned:
                raise UserBanned(requester_id)
            if daily_quota is not None:
                await self._check_quota(session, requester_id, daily_quota, now, self._weight(kind))
            parent_owner_id = None
            if parent_job_id is not None:
                parent = await _load(session, parent_job_id)
                if parent is None or parent.deleted_at is not None:
                    raise InvalidParent("The image this button belongs to no longer exists.")
                if parent_image_index is not None:
                    if parent.status != JobStatus.DONE:
                        raise InvalidParent(f"Job {parent.id} is {parent.status}; it has no images yet.")
                    if not 0 <= parent_image_index < parent.image_count:  # type: ignore[operator]
                        raise InvalidParent(f"Job {parent.id} has no image number {parent_image_index + 1}.")  # type: ignore[operator]
                parent_owner_id = parent.owner_id
            owner_id = decide_owner(kind, requester_id, parent_owner_id)
            await self._db.ensure_user(session, requester_id, requester_name, now)
            job = Job(
                id=self._new_id(),
                kind=kind.value,
                status=JobStatus.QUEUED.value,
                prompt=prompt,
                negative_prompt=negative_prompt,
                params=dict(params or {}),
                seed=seed,
                model=model,
                requester_id=requester_id,
                owner_id=owner_id,
                parent_job_id=parent_job_id,
                parent_image_index=parent_image_index,
                guild_id=guild_id,
                channel_id=channel_id,
                front_end=None if front_end is None else FrontEnd(front_end).value,
                queued_at=now,
                image_count=0,
            )
            session.add(job)
            await session.flush()
            await session.execute(
                update(User).where(User.id == requester_id).values(jobs_total=User.jobs_total + 1)
            )
            await self._bump_usage(session, job, jobs=1)
            return _record(job, images=[])

    # --- the lifecycle ---

    async def start(self, job_id: str) -> JobRecord:
        """queued → running; records the time spent waiting in the queue."""
        async with self._db.write() as session:
            job = await self._transition(session, job_id, JobStatus.RUNNING)
            job.started_at = self._db.now()
            job.queue_seconds = max(0.0, (job.started_at - job.queued_at).total_seconds())
            await self._bump_usage(session, job, started=1, queue_seconds=job.queue_seconds)
            return _record(job, images=[])

    async def finish(
        self, job_id: str, images: Sequence[GeneratedImage], compute_seconds: float, suffix: str = ".png"
    ) -> JobRecord:
        """running → done with its images.

        The files are written to the image store first and the rows only afterwards, in one
        transaction with the status change: a failure in between leaves orphan files (swept later),
        never a row without its file. Raises IllegalTransition before writing anything if the job
        is not running.
        """
        _check_seconds(compute_seconds)
        async with self._db.read() as session:
            job = await _load(session, job_id)
            _check_transition(job, job_id, JobStatus.DONE)
        with storage_errors():  # a full or failing disk: the job stays running, nothing is recorded
            stored = [await self._images.put(image.data, image.suffix or suffix) for image in images]
        async with self._db.write() as session:
            job = await self._transition(session, job_id, JobStatus.DONE)
            rows = [
                Image(
                    job_id=job.id,
                    index=index,
                    seed=image.seed,
                    width=image.width,
                    height=image.height,
                    storage_key=file.key,
                    sha256=file.sha256,
                    byte_size=file.byte_size,
                )
                for index, (image, file) in enumerate(zip(images, stored, strict=True))
            ]
            await self._insert_images(session, rows)
            job.finished_at = self._db.now()
            job.compute_seconds = compute_seconds
            job.image_count = len(rows)
            await self._add_requester_usage(session, job, images=len(rows), compute_seconds=compute_seconds)
            await self._bump_usage(session, job, done=1, images=len(rows), compute_seconds=compute_seconds)
            return _record(job, images=rows)

    async def fail(self, job_id: str, error: str, compute_seconds: float | None = None) -> JobRecord:
        """queued | running → failed, keeping `error` (shown to admins, not necessarily to users)."""
        if compute_seconds is not None:
            _check_seconds(compute_seconds)
        async with self._db.write() as session:
            job = await self._transition(session, job_id, JobStatus.FAILED)
            job.finished_at = self._db.now()
            job.error = error
            job.compute_seconds = compute_seconds
            spent = compute_seconds or 0.0
            await self._add_requester_usage(session, job, images=0, compute_seconds=spent)
            await self._bump_usage(session, job, failed=1, compute_seconds=spent)
            return _record(job, images=[])

    async def cancel(self, job_id: str) -> JobRecord:
        """queued | running → cancelled."""
        async with self._db.write() as session:
            job = await self._transition(session, job_id, JobStatus.CANCELLED)
            job.finished_at = self._db.now()
            await self._bump_usage(session, job, cancelled=1)
            return _record(job, images=[])

    async def withdraw(self, job_id: str) -> None:
        """Take back a job recorded moments ago that will never run (the executor refused it: its queue
        was full, its workers unreachable): the row and what it added to the usage figures go, as if it
        had never been asked for, so a refusal is neither a failure nor a use of the quota.

        Only a queued job can be withdrawn (IllegalTransition otherwise; JobNotFound if there is none).
        """
        async with self._db.write() as session:
            job = await _load(session, job_id, for_update=True)
            if job is None or job.deleted_at is not None:
                raise JobNotFound(job_id)
            if job.status != JobStatus.QUEUED.value:
                raise IllegalTransition(job_id, job.status, "withdrawn")
            await session.execute(
                update(User).where(User.id == job.requester_id).values(jobs_total=User.jobs_total - 1)
            )
            await self._bump_usage(session, job, jobs=-1)
            await session.delete(job)

    async def unfinished(self, front_end: FrontEnd | None = None) -> list[JobRecord]:
        """Jobs left queued or running (by a previous process, at start), oldest first; with `front_end`,
        only those that front end started."""
        async with self._db.read() as session:
            query = select(Job).where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]), Job.deleted_at.is_(None)
            )
            if front_end is not None:
                query = query.where(Job.front_end == FrontEnd(front_end).value)
            jobs = await session.scalars(query.order_by(Job.queued_at, Job.id))
            return [_record(job, images=[]) for job in jobs]

    # --- reading ---

    async def get(self, job_id: str) -> JobRecord | None:
        """The job with its images; None if there is none or it was deleted."""
        async with self._db.read() as session:
            job = await _load(session, job_id, with_images=True)
            return None if job is None or job.deleted_at is not None else _record(job)

    async def recent_for_user(self, user_id: int, limit: int = 10) -> list[JobRecord]:
        """The jobs `user_id` requested, newest first, with their images."""
        async with self._db.read() as session:
            jobs = await session.scalars(
                select(Job)
                .where(Job.requester_id == user_id, Job.deleted_at.is_(None))
                .order_by(Job.queued_at.desc(), Job.id.desc())
                .limit(limit)
                .options(selectinload(Job.images))
            )
            return [_record(job) for job in jobs]

    async def gallery(
        self,
        user_id: int,
        *,
        kind: JobKind | None = None,
        model: str | None = None,
        text: str = "",
        offset: int = 0,
        limit: int = 24,
    ) -> tuple[list[JobRecord], bool]:
        """A page of the jobs `user_id` owns or requested, newest first, with their images, and whether more
        follow. `kind`, `model` ("" for the default model) and `text` (found in the prompt, any case) narrow it."""
        statement = select(Job).where(
            or_(Job.owner_id == user_id, Job.requester_id == user_id), Job.deleted_at.is_(None)
        )
        if kind is not None:
            statement = statement.where(Job.kind == kind.value)
        if model is not None:
            statement = statement.where(Job.model.is_(None) if model == "" else Job.model == model)
        if text.strip():
            escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(func.lower(Job.prompt).like(f"%{escaped}%", escape="\\"))
        async with self._db.read() as session:
            jobs = list(
                await session.scalars(
                    statement.order_by(Job.queued_at.desc(), Job.id.desc())
                    .offset(max(offset, 0))
                    .limit(limit + 1)
                    .options(selectinload(Job.images))
                )
            )
        return [_record(job) for job in jobs[:limit]], len(jobs) > limit

    async def gallery_models(self, user_id: int) -> list[str]:
        """The models of the jobs `user_id` owns or requested ("" for the default model), for a filter."""
        async with self._db.read() as session:
            models = await session.scalars(
                select(Job.model)
                .where(or_(Job.owner_id == user_id, Job.requester_id == user_id), Job.deleted_at.is_(None))
                .distinct()
            )
            return sorted({model or "" for model in models})

    async def children(self, job_id: str) -> list[JobRecord]:
        """The jobs made from `job_id` (not deleted), by the index of the image they came from, then in time."""
        async with self._db.read() as session:
            jobs = await session.scalars(
                select(Job)
                .where(Job.parent_job_id == job_id, Job.deleted_at.is_(None))
                .order_by(
                    Job.parent_image_index.is_(None).desc(), Job.parent_image_index, Job.queued_at, Job.id
                )
                .options(selectinload(Job.images))
            )
            return [_record(job) for job in jobs]

    async def lineage(self, job_id: str) -> list[JobRecord]:
        """The chain from the /imagine at the root down to `job_id` (root first, the job last).

        Deleted ancestors stay in the chain (marked `deleted`, without images) so it never breaks.
        """
        chain: list[JobRecord] = []
        seen: set[str] = set()
        async with self._db.read() as session:
            next_id: str | None = job_id
            while next_id is not None and next_id not in seen:
                seen.add(next_id)
                job = await _load(session, next_id, with_images=True)
                if job is None:
                    if not chain:
                        raise JobNotFound(job_id)
                    break
                chain.append(_record(job))
                next_id = job.parent_job_id
        if chain[0].deleted:
            raise JobNotFound(job_id)
        chain.reverse()
        return chain

    async def jobs_last_24h(self, user_id: int) -> int:
        """Jobs `user_id` requested in the last 24 hours that count against a quota (all but failed ones; a video
        job counts as `video_quota_weight`)."""
        async with self._db.read() as session:
            used, _ = await _quota_usage(session, user_id, self._db.now(), self.video_quota_weight)
            return used

    async def fast_seconds_last_24h(self, user_id: int) -> float:
        """Generation seconds of the jobs `user_id` requested in the last 24 hours that ran in the fast queue
        (recorded with `params["queue"] == "fast"`): the fast time they used today."""
        since = self._db.now() - timedelta(hours=24)
        async with self._db.read() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(Job.compute_seconds), 0.0)).where(
                    Job.requester_id == user_id,
                    Job.queued_at > since,
                    Job.params["queue"].as_string() == "fast",
                )
            )
            return float(total or 0.0)

    # --- changing ---

    async def set_message(self, job_id: str, message_id: int, channel_id: int | None = None) -> JobRecord:
        """Remember the Discord message (and channel) that shows the job."""
        async with self._db.write() as session:
            job = await _load(session, job_id, with_images=True)
            if job is None or job.deleted_at is not None:
                raise JobNotFound(job_id)
            job.message_id = message_id
            if channel_id is not None:
                job.channel_id = channel_id
            return _record(job)

    async def delete(self, job_id: str, by_user_id: int, *, is_admin: bool = False) -> JobRecord:
        """Delete a job for its owner or an admin; anyone else gets NotAllowed.

        The job's images go (rows now; files now unless another job shares them or they were
        written within `DELETE_GRACE`, in which case the orphan sweep takes them). The job row
        stays, marked deleted, so quotas, usage figures and its children's lineage still hold.
        A queued or running job is cancelled as well.
        """
        async with self._db.write() as session:
            job = await _load(session, job_id, with_images=True, for_update=True)
            if job is None or job.deleted_at is not None:
                raise JobNotFound(job_id)
            if by_user_id != job.owner_id and not is_admin:
                raise NotAllowed("Only the owner of this image (or an admin) can delete it.")
            if not JobStatus(job.status).finished:
                job.status = JobStatus.CANCELLED.value
                job.finished_at = self._db.now()
                await self._bump_usage(session, job, cancelled=1)
            keys = {image.storage_key for image in job.images}
            job.images.clear()
            job.deleted_at = self._db.now()
            await session.flush()
            record = _record(job, images=[])
            still_used = (
                set(await session.scalars(select(Image.storage_key).where(Image.storage_key.in_(keys))))
                if keys
                else set()
            )
        cutoff = datetime.now(UTC) - DELETE_GRACE  # file times are wall-clock times, not the injected clock
        for key in sorted(keys - still_used):
            try:
                modified = await self._images.modified_at(key)
                if modified is not None and modified < cutoff:
                    await self._images.delete(key)
            except OSError as error:  # the job is deleted; the orphan sweep takes the file later
                log.warning("Could not remove image %s of deleted job %s: %s", key, job_id, error)
        return record

    # --- internals ---

    async def _transition(self, session: AsyncSession, job_id: str, target: JobStatus) -> Job:
        job = await _load(session, job_id, for_update=True)
        _check_transition(job, job_id, target)
        assert job is not None
        job.status = target.value
        return job

    async def _insert_images(self, session: AsyncSession, rows: list[Image]) -> None:
        session.add_all(rows)
        await session.flush()

    def _weight(self, kind: JobKind) -> int:
        """The jobs of a daily quota one job of `kind` counts for."""
        return self.video_quota_weight if kind in VIDEO_KINDS else 1

    async def _check_quota(
        self, session: AsyncSession, user_id: int, limit: int, now: datetime, weight: int = 1
    ) -> None:
        used, oldest = await _quota_usage(session, user_id, now, self.video_quota_weight)
        if used + weight > limit:
            raise QuotaExceeded(used, limit, oldest + timedelta(hours=24) if oldest else None)

    async def _bump_usage(self, session: AsyncSession, job: Job, **amounts: float) -> None:
        keys = {"day": job.queued_at.date(), "kind": job.kind}
        await session.execute(self._db.upsert_adding(UsageDaily.__table__, keys, amounts))  # type: ignore[arg-type]

    async def _add_requester_usage(
        self, session: AsyncSession, job: Job, images: int, compute_seconds: float
    ) -> None:
        await session.execute(
            update(User)
            .where(User.id == job.requester_id)
            .values(
                images_total=User.images_total + images,
                compute_seconds_total=User.compute_seconds_total + compute_seconds,
            )
        )


async def _quota_usage(
    session: AsyncSession, user_id: int, now: datetime, video_weight: int = 1
) -> tuple[int, datetime | None]:
    """Jobs counted against `user_id`'s quota in the 24 hours before `now` (a video job as `video_weight`), and
    when the oldest of them was queued."""
    since = now - timedelta(hours=24)
    weight = case((Job.kind.in_([kind.value for kind in VIDEO_KINDS]), video_weight), else_=1)
    used, oldest = (
        await session.execute(
            select(func.coalesce(func.sum(weight), 0), func.min(Job.queued_at)).where(
                Job.requester_id == user_id, Job.queued_at > since, Job.status != JobStatus.FAILED.value
            )
        )
    ).one()
    return int(used), oldest


async def _load(
    session: AsyncSession, job_id: str, *, with_images: bool = False, for_update: bool = False
) -> Job | None:
    statement = select(Job).where(Job.id == job_id)
    if with_images:
        statement = statement.options(selectinload(Job.images))
    if for_update:
        statement = statement.with_for_update(of=Job)
    return await session.scalar(statement)


def _check_transition(job: Job | None, job_id: str, target: JobStatus) -> None:
    if job is None or job.deleted_at is not None:
        raise JobNotFound(job_id)
    if JobStatus(job.status) not in TRANSITIONS[target]:
        raise IllegalTransition(job_id, job.status, target.value)


def _a(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def _check_seconds(seconds: float) -> None:
    if not seconds >= 0:
        raise InvalidValue(f"compute seconds must be zero or more (got {seconds}).")


def _record(job: Job, images: list[Image] | None = None) -> JobRecord:
    rows = job.images if images is None else images
    return JobRecord(
        id=job.id,
        kind=JobKind(job.kind),
        status=JobStatus(job.status),
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        params=dict(job.params or {}),
        seed=job.seed,
        model=job.model,
        requester_id=job.requester_id,
        owner_id=job.owner_id,
        parent_job_id=job.parent_job_id,
        parent_image_index=job.parent_image_index,
        guild_id=job.guild_id,
        channel_id=job.channel_id,
        message_id=job.message_id,
        front_end=None if job.front_end is None else FrontEnd(job.front_end),
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        compute_seconds=job.compute_seconds,
        error=job.error,
        deleted=job.deleted_at is not None,
        images=tuple(image_record(image) for image in rows),
    )


def image_record(image: Image) -> ImageRecord:
    return ImageRecord(
        job_id=image.job_id,
        index=image.index,
        seed=image.seed,
        width=image.width,
        height=image.height,
        storage_key=image.storage_key,
        sha256=image.sha256,
        byte_size=image.byte_size,
    )
