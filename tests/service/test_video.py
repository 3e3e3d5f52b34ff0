"""Videos through the job service: 🎞 Animate and Extend presses, Remix's motion prompt, --video, quota and kinds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.executor.local import LocalExecutor
from pipeline.request import GenerationRequest
from pipeline.video_files import decode_mp4, mp4_info
from service.admission import Place, Requester
from service.errors import NotAnimatable
from service.jobs import VIDEO_ACTIONS, ButtonAction
from service.settings import Settings
from service.wiring import Services
from storage.errors import QuotaExceeded
from storage.records import FrontEnd, JobKind
from tests.fixtures.reporters import RecordingReporter, outcome_of

ADA = Requester(1, "ada")
GUILD = Place(5, 6, FrontEnd.DISCORD)  # a Discord channel: the bot resumes its jobs
IMAGE = GenerationRequest(prompt="a red circle", seed=5, width=32, height=32, steps=2, num_images=1)
FRAMES = 4


@pytest.fixture
async def open_video_services(tiny_video_engine: Any, tiny_model_dir: Path, tmp_path: Path):
    opened: list[Services] = []

    async def open_(**settings: Any) -> Services:
        values = {
            "model": str(tiny_model_dir),
            "data_dir": tmp_path / "data",
            "video_frames": FRAMES,
            **settings,
        }
        services = await Services.open(
            Settings(_env_file=None, **values), LocalExecutor({None: tiny_video_engine}, preview_every=1)
        )
        opened.append(services)
        return services

    yield open_
    for services in reversed(opened):
        await services.close()


@pytest.fixture
async def services(open_video_services) -> Services:
    return await open_video_services()


async def an_image(services: Services, request: GenerationRequest = IMAGE):
    return (await outcome_of(await services.jobs.imagine(ADA, GUILD, request))).job


async def test_animate_makes_an_mp4_and_thumbnail_kept_with_the_job(services: Services):
    image = await an_image(services)
    assert ButtonAction.ANIMATE_HIGH in services.jobs.offered_for(image)
    assert ButtonAction.EXTEND not in services.jobs.offered_for(image)

    outcome = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_HIGH, image.id, 0))

    job = outcome.job
    assert (job.kind, job.parent_job_id, job.parent_image_index) == (JobKind.ANIMATE, image.id, 0)
    assert job.params["motion"] == "high"
    info = mp4_info(outcome.video)
    assert (info["codec"], info["frames"]) == ("h264", FRAMES)
    assert info["provenance"]["prompt"] == "a red circle"
    assert info["provenance"]["seed"] == str(job.seed)
    assert info["provenance"]["model"] == "tiny-sd"
    assert info["provenance"]["job_id"] == job.id
    mp4, thumbnail = job.images
    assert mp4.storage_key.endswith(".mp4") and thumbnail.storage_key.endswith(".png")
    assert await services.storage.images.get(mp4.storage_key) == outcome.video
    assert services.jobs.offered_for(job) == {ButtonAction.EXTEND}


async def test_low_and_high_motion_are_recorded(services: Services):
    image = await an_image(services)
    low = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0))
    assert low.job.params["motion"] == "low"


async def test_extend_adds_frames_from_the_last_frame(services: Services):
    image = await an_image(services)
    video = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0))

    longer = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.EXTEND, video.job.id, 0))

    assert longer.job.kind is JobKind.EXTEND and longer.job.parent_job_id == video.job.id
    assert longer.job.params["motion"] == "low"  # the motion its video was made with
    assert len(decode_mp4(longer.video)) == 2 * FRAMES - 1  # the shared frame once


async def test_extend_under_images_and_animate_under_a_video_are_refused(services: Services):
    image = await an_image(services)
    with pytest.raises(NotAnimatable, match="use 🎞 Animate"):
        await services.jobs.press(ADA, GUILD, ButtonAction.EXTEND, image.id, 0)
    video = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0))
    with pytest.raises(NotAnimatable, match="use Extend"):
        await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_HIGH, video.job.id, 1)


async def test_remix_gives_the_video_a_motion_prompt(services: Services):
    image = await an_image(services)
    pending = await services.jobs.press(
        ADA, GUILD, ButtonAction.ANIMATE_HIGH, image.id, 0, prompt="a red circle moving left --steps 2"
    )
    outcome = await outcome_of(pending)
    assert outcome.job.prompt == "a red circle moving left"
    assert mp4_info(outcome.video)["provenance"]["prompt"] == "a red circle moving left"


async def test_video_prompt_makes_an_image_then_its_video_as_one_job_with_a_parent(services: Services):
    request = services.jobs.parse("a red circle --video --steps 2 --seed 9")
    assert request.video and request.num_images == 1
    reporter = RecordingReporter()
    await (await services.jobs.imagine(ADA, GUILD, request)).start(reporter)

    video = reporter.outcome
    assert reporter.failure is None and video is not None and video.video is not None
    assert video.job.kind is JobKind.ANIMATE and video.job.params["motion"] == "high"
    parent = await services.storage.jobs.get(video.job.parent_job_id)
    assert parent.kind is JobKind.IMAGINE and len(parent.images) == 1
    assert video.job.seed == parent.images[0].seed == 9
    assert len(decode_mp4(video.video)) == FRAMES
    assert services.jobs.in_flight(ADA.user_id) == 0


async def test_a_video_counts_as_video_quota_weight_jobs(open_video_services):
    services = await open_video_services(video_quota_weight=3)
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=4)
    image = await an_image(services)  # 1 of 4
    await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0))  # 4 of 4
    assert await services.storage.jobs.jobs_last_24h(ADA.user_id) == 4
    with pytest.raises(QuotaExceeded):
        await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0)


async def test_stats_count_videos_as_their_own_kind(services: Services):
    image = await an_image(services)
    await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0))
    report = await services.storage.stats.usage("24h")
    assert report.jobs_by_kind[JobKind.ANIMATE] == 1 and report.jobs_by_kind[JobKind.IMAGINE] == 1


async def test_a_model_without_a_video_model_offers_no_video_and_refuses_one(open_services):
    services = await open_services()
    image = (await outcome_of(await services.jobs.imagine(ADA, GUILD, IMAGE))).job
    assert not VIDEO_ACTIONS & services.jobs.offered_for(image)
    with pytest.raises(NotAnimatable, match="VIDEO_MODEL"):
        await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, image.id, 0)
    with pytest.raises(RequestError, match="--video needs a video model"):
        services.jobs.parse("a red circle --video")


async def test_a_video_prompt_left_by_a_restart_still_ends_in_its_video(open_video_services):
    from service.recovery import recover_unfinished

    first = await open_video_services()
    request = first.jobs.parse("a red circle --video --steps 2 --seed 9")
    imagined = await first.jobs.imagine(ADA, GUILD, request)
    await first.close()  # before the image ran: it stays queued for the next start

    second = await open_video_services()
    reporter = RecordingReporter()
    assert (
        await recover_unfinished(
            second.jobs, lambda job: reporter, notify_lost=None, front_end=FrontEnd.DISCORD
        )
        == []
    )  # type: ignore[arg-type]
    await asyncio.wait_for(second.jobs.wait_idle(), 120)
    video = reporter.outcome
    assert video is not None and video.video is not None, reporter.failure
    assert video.job.kind is JobKind.ANIMATE and video.job.parent_job_id == imagined.job.id
    assert len(decode_mp4(video.video)) == FRAMES
