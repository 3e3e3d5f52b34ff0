"""The bot's job service, unchanged, on EXECUTOR=celery: record → run on a worker → store → report."""

from __future__ import annotations

import asyncio

from pipeline.executor.celery import CeleryExecutor
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.settings import Settings
from service.wiring import Services
from storage.records import JobStatus
from tests.fixtures.reporters import RecordingReporter


async def test_an_imagine_through_the_job_service_runs_on_a_worker_and_is_stored(
    worker, fleet_settings: Settings
):
    services = await Services.open(fleet_settings)
    try:
        assert isinstance(services.executor, CeleryExecutor)
        assert services.model_names == ["tiny-sd"]  # as announced by the worker
        request = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=3)
        pending = await services.jobs.imagine(Requester(1, "alice"), Place(None, None), request)
        reporter = RecordingReporter()
        async with asyncio.timeout(90):
            await pending.start(reporter)

        assert reporter.failure is None
        assert reporter.steps[-1] == (3, 3)
        assert reporter.outcome is not None and len(reporter.outcome.images) == 4
        assert all(png.startswith(b"\x89PNG") for png in reporter.outcome.images)
        record = await services.storage.jobs.get(pending.job.id)
        assert record.status is JobStatus.DONE and len(record.images) == 4
        assert [image.seed for image in record.images] == [5, 6, 7, 8]
    finally:
        await services.close()
