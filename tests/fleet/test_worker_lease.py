"""With default settings (an hour's CELERY_VISIBILITY_TIMEOUT), a worker killed (kill -9) or hung (SIGSTOP)
mid-job loses the job to another worker within a minute, through the job's lease, and the job is reported
once: one result, one "done", however long jobs run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from pipeline.executor.celery_jobs import FleetConfig, JobKeys
from service.admission import Place, Requester
from service.jobs import Outcome
from service.settings import Settings
from service.wiring import Services
from testkit.fleet import WorkerProcess, own_fleet
from tests.fixtures.fleet import LONG, job_record, stream_types
from tests.fixtures.reporters import RecordingReporter

pytestmark = pytest.mark.slow

DEFAULTS = FleetConfig(redis_url="")
RECOVERY_SECONDS = 60  # the promise: another worker has the job within a minute of losing its worker


@pytest.fixture
def fleet_config(fleet_redis_url: str) -> Iterator[FleetConfig]:
    """A fleet of its own with the default visibility timeout and lease, as an operator runs it; one per test,
    so the worker a test leaves running cannot take the next test's job (the workers live all session)."""
    yield from own_fleet(
        fleet_redis_url, visibility_timeout=DEFAULTS.visibility_timeout, lease_seconds=DEFAULTS.lease_seconds
    )


class TimedReporter(RecordingReporter):
    """Counts what the member is told, and when the result came."""

    def __init__(self) -> None:
        super().__init__()
        self.results = 0
        self.failures = 0
        self.finished_at: float | None = None

    async def finished(self, outcome: Outcome) -> None:
        self.results += 1
        self.finished_at = time.time()
        await super().finished(outcome)

    async def failed(self, message: str) -> None:
        self.failures += 1
        await super().failed(message)


@pytest.fixture
async def services(fleet_settings: Settings, fleet_config: FleetConfig, tiny_model_dir: Path):
    assert fleet_settings.celery_visibility_timeout == 3600 and fleet_settings.celery_lease_seconds == 15
    opened = await Services.open(fleet_settings)
    try:
        yield opened
    finally:
        await opened.close()


async def run_until_first_step(services: Services) -> tuple[str, TimedReporter, asyncio.Task[None]]:
    pending = await services.jobs.imagine(Requester(1, "ada"), Place(5, 6), LONG)
    reporter = TimedReporter()
    task = pending.start(reporter)
    assert task is not None
    async with asyncio.timeout(90):
        while not reporter.steps:  # noqa: ASYNC110 - the reporter is told by the job, no event to wait on
            await asyncio.sleep(0.05)
    return pending.job.id, reporter, task


def holder_of(config: FleetConfig, job_id: str, workers: list[WorkerProcess]) -> WorkerProcess:
    [holder] = [worker for worker in workers if worker.is_named(job_record(config, job_id)["worker"])]
    return holder


def second_start(config: FleetConfig, job_id: str) -> float:
    """When (Unix time, from the stream entry's id) the second delivery of the job began."""
    client = redis.Redis.from_url(config.redis_url)
    try:
        for entry_id, fields in client.xrange(JobKeys(config.key_prefix, job_id).events):
            if fields[b"type"] == b"started" and fields[b"attempt"] == b"2":
                return int(entry_id.split(b"-")[0]) / 1000
    finally:
        client.close()
    raise AssertionError(f"job {job_id} was never started a second time")


async def assert_reported_once(
    services: Services, config: FleetConfig, job_id: str, reporter: TimedReporter, task: asyncio.Task[None]
) -> None:
    async with asyncio.timeout(150):
        await task
    assert (reporter.results, reporter.failures) == (1, 0)
    assert reporter.outcome is not None and len(reporter.outcome.images) == 2
    record = await services.storage.jobs.get(job_id)
    assert record is not None and record.status == "done" and len(record.images) == 2
    assert stream_types(config, job_id).count("finished") == 1
    assert job_record(config, job_id)["attempts"] == "2"


async def test_a_killed_workers_job_is_finished_by_another_within_a_minute_and_reported_once(
    services: Services, start_worker: Callable[..., WorkerProcess], fleet_config: FleetConfig
):
    workers = [start_worker(fleet_config), start_worker(fleet_config)]
    job_id, reporter, task = await run_until_first_step(services)
    doomed = holder_of(fleet_config, job_id, workers)
    [rescuer] = [worker for worker in workers if worker is not doomed]
    doomed.kill()
    lost_at = time.time()

    await assert_reported_once(services, fleet_config, job_id, reporter, task)
    assert rescuer.is_named(job_record(fleet_config, job_id)["worker"])
    assert second_start(fleet_config, job_id) - lost_at < RECOVERY_SECONDS
    assert reporter.finished_at is not None and reporter.finished_at - lost_at < RECOVERY_SECONDS
    assert job_record(fleet_config, job_id)["reaped"] == "1"


async def test_a_hung_workers_job_is_finished_by_another_and_the_waking_worker_reports_nothing(
    services: Services, start_worker: Callable[..., WorkerProcess], fleet_config: FleetConfig
):
    workers = [start_worker(fleet_config), start_worker(fleet_config)]
    job_id, reporter, task = await run_until_first_step(services)
    hung = holder_of(fleet_config, job_id, workers)
    [rescuer] = [worker for worker in workers if worker is not hung]
    hung.hang()
    lost_at = time.time()
    try:
        await assert_reported_once(services, fleet_config, job_id, reporter, task)
        assert rescuer.is_named(job_record(fleet_config, job_id)["worker"])
        assert second_start(fleet_config, job_id) - lost_at < RECOVERY_SECONDS
    finally:
        hung.wake()

    # The worker wakes mid-job, finds the job is no longer its own and stops without a word to Redis.
    async with asyncio.timeout(60):
        while "taken over by another delivery" not in hung.log():  # noqa: ASYNC110 - a log file
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    types = stream_types(fleet_config, job_id)
    assert types.count("finished") == 1 and types[-1] == "finished"
    assert (reporter.results, reporter.failures) == (1, 0)
