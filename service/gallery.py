"""A member's own jobs, as a gallery shows them: who may see a job, its page's lineage, its stored images.

The rule of who may see a job (`may_view`) lives here once; a front end asks `viewable_job` and shows a job
it may not see exactly as one that does not exist, so it never tells whether another member's job exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise

from service.admission import Requester
from service.errors import JobGone, UserError
from service.jobs import VIDEO_SUFFIX, video_mp4
from storage import Storage
from storage.errors import JobNotFound
from storage.records import JobKind, JobRecord

log = logging.getLogger(__name__)

PAGE_SIZE = 24


class NotAFilter(UserError):
    """A gallery filter that names no kind of job."""


class NoSuchImage(UserError):
    """An image number a job does not have."""


def may_view(job: JobRecord, requester: Requester) -> bool:
    """A job's prompt, images and parameters are for its owner and its requester (an upscale of another
    member's image is the image owner's, pressed by the requester), and for admins."""
    return requester.is_admin or requester.user_id in (job.owner_id, job.requester_id)


async def viewable_job(storage: Storage, job_id: str, requester: Requester) -> JobRecord:
    """The job, if `requester` may see it; JobGone ("This job no longer exists.") otherwise."""
    job = await storage.jobs.get(job_id)
    if job is None or not may_view(job, requester):
        raise JobGone()
    return job


@dataclass(frozen=True)
class GalleryPage:
    jobs: list[JobRecord]
    page: int  # from 1
    has_next: bool
    models: list[str]  # the member's models, "" for the default one


def gallery_kind(value: str) -> JobKind | None:
    """A `kind` filter as given (empty: every kind)."""
    if not value:
        return None
    try:
        return JobKind(value)
    except ValueError:
        raise NotAFilter(
            f"There is no kind of job called {value!r}; pick one of {', '.join(kind.value for kind in JobKind)}."
        ) from None


async def gallery_page(
    storage: Storage,
    requester: Requester,
    *,
    kind: str = "",
    model: str | None = None,
    text: str = "",
    page: int = 1,
) -> GalleryPage:
    """Page `page` of the jobs `requester` owns or requested, newest first, narrowed by the filters."""
    page = max(page, 1)
    jobs, has_next = await storage.jobs.gallery(
        requester.user_id,
        kind=gallery_kind(kind),
        model=model,
        text=text,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return GalleryPage(jobs, page, has_next, await storage.jobs.gallery_models(requester.user_id))


@dataclass(frozen=True)
class Ancestor:
    """A job up the lineage: `job` when the viewer may see it, else only that it is another member's."""

    job_id: str
    job: JobRecord | None
    image_index: int | None  # which of its images the next job down came from (from 0)


@dataclass(frozen=True)
class Lineage:
    ancestors: list[Ancestor]  # root first, the job's parent last
    children_by_image: dict[int | None, list[JobRecord]]  # image index (None: the whole job, 🔄) → children


async def lineage_of(storage: Storage, job: JobRecord, requester: Requester) -> Lineage:
    """Where `job` comes from and what was made from it, as far as `requester` may see."""
    try:
        chain = await storage.jobs.lineage(job.id)
    except JobNotFound:
        chain = [job]
    ancestors = []
    for above, below in pairwise(chain):
        shown = above if not above.deleted and may_view(above, requester) else None
        ancestors.append(Ancestor(above.id, shown, below.parent_image_index))
    children: dict[int | None, list[JobRecord]] = {}
    for child in await storage.jobs.children(job.id):
        if may_view(child, requester):
            children.setdefault(child.parent_image_index, []).append(child)
    return Lineage(ancestors, children)


@dataclass(frozen=True)
class VideoFiles:
    """Where a video job keeps its MP4 and its first frame as a PNG thumbnail (image numbers, from 1)."""

    video: int
    thumbnail: int


def video_files(job: JobRecord) -> VideoFiles | None:
    """A video job's MP4 and thumbnail (None for a job of images, or a video job not finished)."""
    mp4 = video_mp4(job)
    if mp4 is None:
        return None
    thumbnails = [n for n, image in enumerate(job.images, 1) if not image.storage_key.endswith(VIDEO_SUFFIX)]
    if not thumbnails:
        return None
    return VideoFiles(job.images.index(mp4) + 1, thumbnails[0])


async def stored_png(storage: Storage, job: JobRecord, number: int) -> bytes:
    """Image `number` (from 1) of a job the caller may see, as stored: the PNG with its metadata."""
    if not 1 <= number <= len(job.images):
        raise NoSuchImage(f"Job {job.id} has no image number {number}; it has {len(job.images)}.")
    if job.images[number - 1].storage_key.endswith(VIDEO_SUFFIX):
        raise NoSuchImage(f"File {number} of job {job.id} is its video (an MP4), not a PNG image.")
    return await _stored(storage, job, number, "image")


async def stored_mp4(storage: Storage, job: JobRecord) -> bytes:
    """The MP4 of a video job the caller may see, as stored: with its provenance in its metadata."""
    files = video_files(job)
    if files is None:
        raise NoSuchImage(f"Job {job.id} is not a video; it has no MP4.")
    return await _stored(storage, job, files.video, "video")


async def _stored(storage: Storage, job: JobRecord, number: int, what: str) -> bytes:
    try:
        return await storage.images.get(job.images[number - 1].storage_key)
    except FileNotFoundError:
        log.warning("The file of %s %d of job %s is missing", what, number, job.id)
        raise NoSuchImage(
            f"The file of {what} {number} of job {job.id} is missing from Kaika's image store."
        ) from None
