"""Video jobs in storage: an MP4 and its thumbnail kept with the job, and the quota weight of a video."""

from __future__ import annotations

import pytest

from storage import GeneratedImage, JobKind, QuotaExceeded, Storage

ADA = 101


async def a_done_image(storage: Storage) -> str:
    job = await storage.jobs.create("imagine", ADA, prompt="a red circle")
    await storage.jobs.start(job.id)
    await storage.jobs.finish(job.id, [GeneratedImage(b"png-bytes", 7, 64, 64)], 1.0)
    return job.id


async def test_a_video_job_keeps_its_mp4_and_thumbnail_under_their_own_suffixes(storage: Storage) -> None:
    parent = await a_done_image(storage)
    video = await storage.jobs.create(
        JobKind.ANIMATE, ADA, prompt="a red circle", parent_job_id=parent, parent_image_index=0
    )
    await storage.jobs.start(video.id)
    done = await storage.jobs.finish(
        video.id,
        [GeneratedImage(b"mp4-bytes", 7, 64, 64, suffix=".mp4"), GeneratedImage(b"thumb", 7, 64, 64)],
        2.0,
    )
    assert [image.storage_key.rsplit(".", 1)[1] for image in done.images] == ["mp4", "png"]
    assert await storage.images.get(done.images[0].storage_key) == b"mp4-bytes"
    assert (done.kind, done.parent_job_id, done.parent_image_index) == (JobKind.ANIMATE, parent, 0)


async def test_an_extend_needs_the_video_it_extends(storage: Storage) -> None:
    with pytest.raises(Exception, match="needs the job it comes from"):
        await storage.jobs.create(JobKind.EXTEND, ADA, prompt="more")


async def test_a_video_counts_as_video_quota_weight_jobs(database_url: str, tmp_path, clock) -> None:
    async with await Storage.open(
        database_url, tmp_path / "images", clock=clock, video_quota_weight=4
    ) as storage:
        await _a_video_counts_as_four_jobs(storage)


async def _a_video_counts_as_four_jobs(storage: Storage) -> None:
    parent = await a_done_image(storage)  # 1 of 6
    await storage.jobs.create(
        JobKind.ANIMATE, ADA, prompt="x", parent_job_id=parent, parent_image_index=0, daily_quota=6
    )  # 5 of 6
    assert await storage.jobs.jobs_last_24h(ADA) == 5
    with pytest.raises(QuotaExceeded):  # another video would make 9
        await storage.jobs.create(
            JobKind.ANIMATE, ADA, prompt="x", parent_job_id=parent, parent_image_index=0, daily_quota=6
        )
    await storage.jobs.create("imagine", ADA, prompt="one image job still fits", daily_quota=6)
    assert await storage.jobs.jobs_last_24h(ADA) == 6
