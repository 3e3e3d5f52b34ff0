"""Stopping the job service (a bot's SIGTERM): no new jobs, a grace for the running ones, the rest parked."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.errors import Restarting
from service.wiring import Services
from storage.records import JobStatus
from tests.fixtures.reporters import RecordingReporter

ADA, BO = Requester(1, "ada"), Requester(2, "bo")
GUILD = Place(5, 6)
QUICK = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)
SLOW = QUICK.replace(prompt="a slow square", steps=100, num_images=4)


class StepReporter(RecordingReporter):
    """Says when its job has made its first step (it is running)."""

    def __init__(self) -> None:
        super().__init__()
        self.stepped = asyncio.Event()

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await super().progress(step, total, preview_png)
        self.stepped.set()


async def test_a_draining_service_refuses_new_jobs_and_records_nothing(services: Services):
    assert await services.jobs.drain(0) is True  # nothing in flight
    with pytest.raises(Restarting) as refused:
        await services.jobs.imagine(ADA, GUILD, QUICK)
    assert str(refused.value) == "Kaika is restarting, try again in a minute."
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []


async def test_a_job_that_finishes_within_the_grace_is_reported(services: Services):
    reporter = RecordingReporter()
    (await services.jobs.imagine(ADA, GUILD, QUICK)).start(reporter)
    assert await services.jobs.drain(60) is True
    assert reporter.outcome is not None and reporter.failure is None
    assert (await services.storage.jobs.get(reporter.outcome.job.id)).status is JobStatus.DONE


async def test_jobs_still_unfinished_after_the_grace_are_parked_for_the_next_start(services: Services):
    first, second = StepReporter(), RecordingReporter()
    running = await services.jobs.imagine(ADA, GUILD, SLOW)
    waiting = await services.jobs.imagine(BO, GUILD, SLOW)
    running.start(first)
    waiting.start(second)
    async with asyncio.timeout(60):
        await first.stepped.wait()
    assert await services.jobs.drain(0.2) is False
    await services.jobs.close()

    # Neither failed nor cancelled: recorded as they were, which restart recovery resumes.
    assert first.failure is None and second.failure is None
    assert (await services.storage.jobs.get(running.job.id)).status is JobStatus.RUNNING
    assert (await services.storage.jobs.get(waiting.job.id)).status is JobStatus.QUEUED
    assert {job.id for job in await services.storage.jobs.unfinished()} == {running.job.id, waiting.job.id}
