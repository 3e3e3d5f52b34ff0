"""The job service's hold on places in flight: every way a job ends gives its place back exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.executor.local import LocalExecutor
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.settings import Settings
from service.wiring import Services
from storage.errors import QuotaExceeded
from storage.records import JobStatus
from tests.fixtures.reporters import RecordingReporter

ADA = Requester(1, "ada")
GUILD = Place(5, 6)
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)


@pytest.fixture
async def services(tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path) -> AsyncIterator[Services]:
    """The job service on the tiny model, one job per user at a time."""
    settings = Settings(
        _env_file=None, model=str(tiny_model_dir), data_dir=tmp_path / "data", max_jobs_per_user=1
    )
    opened = await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=0))
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_reported_job_gives_its_place_back(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await pending.start(reporter)
    assert reporter.outcome is not None and reporter.failure is None
    assert services.jobs.in_flight(ADA.user_id) == 0
    await services.jobs.imagine(ADA, GUILD, REQUEST)  # the place is free again


async def test_a_job_given_up_before_it_is_followed_is_failed_and_frees_its_place(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    await pending.abandon("Discord did not take the acknowledgement.")
    assert services.jobs.in_flight(ADA.user_id) == 0
    record = await services.storage.jobs.get(pending.job.id)
    assert record.status is JobStatus.FAILED and record.error == "Discord did not take the acknowledgement."
    assert await services.storage.jobs.jobs_last_24h(ADA.user_id) == 0  # a failure does not use the quota
    await pending.abandon("again")  # giving up twice changes nothing more
    assert services.jobs.in_flight(ADA.user_id) == 0
    second = await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1
    await second.abandon("done with it")


async def test_a_job_storage_refuses_holds_no_place(services: Services):
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=0)
    with pytest.raises(QuotaExceeded):
        await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 0
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=None)
    await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1
