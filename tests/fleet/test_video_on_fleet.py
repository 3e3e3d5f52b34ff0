"""A video job on the Celery fleet: its frames travel through Redis and come back as one MP4, even when the
worker animating it is killed mid-job (another worker takes it over through its lease)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.executor.celery_jobs import FleetConfig
from pipeline.request import GenerationRequest
from pipeline.video_files import decode_mp4
from service.admission import Place, Requester
from service.jobs import ButtonAction
from service.settings import Settings
from service.wiring import Services
from testkit.fleet import WorkerProcess, own_fleet
from tests.fixtures.fleet import job_record, stream_types
from tests.fixtures.reporters import outcome_of
from tests.fleet.test_worker_lease import DEFAULTS, TimedReporter, holder_of

pytestmark = pytest.mark.slow

ADA = Requester(1, "ada")
GUILD = Place(5, 6)
FRAMES = 32  # with 25 steps, seconds of work on the tiny models: time to kill its worker mid-job


@pytest.fixture
def fleet_config(fleet_redis_url: str) -> Iterator[FleetConfig]:
    yield from own_fleet(
        fleet_redis_url, visibility_timeout=DEFAULTS.visibility_timeout, lease_seconds=DEFAULTS.lease_seconds
    )


@pytest.fixture
async def services(fleet_settings: Settings):
    settings = fleet_settings.model_copy(update={"video_frames": FRAMES})
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_video_job_survives_its_worker_killed_mid_job(
    services: Services,
    start_worker: Callable[..., WorkerProcess],
    fleet_config: FleetConfig,
    tiny_motion_adapter_dir: Path,
):
    workers = [start_worker(fleet_config, VIDEO_MODEL=str(tiny_motion_adapter_dir)) for _ in range(2)]
    image = GenerationRequest(prompt="a red circle", seed=4, width=64, height=64, steps=25, num_images=1)
    made = await outcome_of(await services.jobs.imagine(ADA, GUILD, image), 120)
    assert ButtonAction.ANIMATE_LOW in services.jobs.offered_for(
        made.job
    )  # the workers announced a video model

    pending = await services.jobs.press(ADA, GUILD, ButtonAction.ANIMATE_LOW, made.job.id, 0)
    reporter = TimedReporter()
    task = pending.start(reporter)
    assert task is not None
    async with asyncio.timeout(90):
        while not reporter.steps:  # noqa: ASYNC110 - the reporter is told by the job, no event to wait on
            await asyncio.sleep(0.05)
    holder_of(fleet_config, pending.job.id, workers).kill()

    async with asyncio.timeout(150):
        await task
    assert (reporter.results, reporter.failures) == (1, 0)
    assert reporter.outcome is not None and reporter.outcome.video is not None
    assert len(decode_mp4(reporter.outcome.video)) == FRAMES
    record = await services.storage.jobs.get(pending.job.id)
    assert record.status == "done" and record.kind == "animate" and len(record.images) == 2
    assert job_record(fleet_config, pending.job.id)["attempts"] == "2"
    assert stream_types(fleet_config, pending.job.id).count("finished") == 1
