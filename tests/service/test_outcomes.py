"""A job's outcome is decided once: recorded before anyone is told, told once, never taken back, and kept
for the next start when storage is gone. A refusal is not a failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import QueueFull
from pipeline.executor.local import LocalExecutor
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.jobs import JobService, Outcome
from service.recovery import recover_unfinished
from service.settings import Settings
from service.wiring import Services
from storage import Storage, StorageUnavailable
from storage.records import FrontEnd, JobStatus
from tests.fixtures.reporters import RecordingReporter

ADA = Requester(1, "ada")
GUILD = Place(5, 6, FrontEnd.DISCORD)  # a Discord channel: the bot resumes its jobs
QUICK = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=1, num_images=1)
SLOW = GenerationRequest(prompt="a slow sunrise", seed=7, width=64, height=64, steps=12, num_images=1)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.jobs.RECORD_RETRY_SECONDS", (0.05, 0.2))


@pytest.fixture
async def burst_services(tiny_engine: Any, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", max_queue=60, max_jobs_per_user=2)
    opened = await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=0))
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_burst_over_the_limits_is_refused_without_one_failure_in_the_figures(
    burst_services: Services, tiny_engine: Any, monkeypatch: pytest.MonkeyPatch
):
    service = burst_services.jobs
    members = [Requester(100 + n, f"member{n}") for n in range(50)]
    refusals: list[str] = []
    reporters: list[RecordingReporter] = []

    async def ask(member: Requester) -> None:
        try:
            pending = await service.imagine(member, GUILD, QUICK)
        except QueueFull as refusal:
            refusals.append(str(refusal))
            return
        reporters.append(reporter := RecordingReporter())
        pending.start(reporter)

    # 200 /imagine from 50 members at once, as the report of a busy evening had it.
    await asyncio.gather(*(ask(members[n % 50]) for n in range(200)))
    async with asyncio.timeout(240):
        await service.wait_idle()

    accepted = len(reporters)
    assert accepted + len(refusals) == 200 and accepted >= 60 and refusals
    assert all("The queue is full (60 jobs)" in r or "You already have 2 jobs" in r for r in refusals)
    assert all(r.outcome is not None and r.failure is None for r in reporters)
    report = await burst_services.storage.stats.usage("24h")
    assert (report.jobs, report.done, report.failed, report.failure_rate) == (accepted, accepted, 0, 0.0)
    recorded = [job for m in members for job in await burst_services.storage.jobs.recent_for_user(m.user_id)]
    assert len(recorded) == accepted and all(job.status is JobStatus.DONE for job in recorded)
    assert service.in_flight(ADA.user_id) == 0 and burst_services.executor.queue_depth() == 0

    # A real failure counts, against the jobs that ran and nothing else.
    def broken_run(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(tiny_engine, "run_outcomes", broken_run)
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await (await service.imagine(ADA, GUILD, QUICK)).start(reporter)
    assert reporter.failure is not None and "the device fell over" in reporter.failure
    report = await burst_services.storage.stats.usage("24h")
    assert (report.failed, report.failure_rate) == (1, 1 / (accepted + 1))


async def test_a_job_the_executor_refuses_is_not_recorded(burst_services: Services):
    await burst_services.executor.close()  # a generator shutting down refuses every job
    with pytest.raises(QueueFull, match="shutting down"):
        await burst_services.jobs.imagine(ADA, GUILD, QUICK)
    storage = burst_services.storage
    assert await storage.jobs.recent_for_user(ADA.user_id) == []
    assert await storage.jobs.jobs_last_24h(ADA.user_id) == 0
    report = await storage.stats.usage("24h")
    assert (report.jobs, report.failed, report.failure_rate) == (0, 0, None)
    assert burst_services.jobs.in_flight(ADA.user_id) == 0


async def service_on(storage: Storage, engine: Any) -> JobService:
    executor = LocalExecutor({None: engine}, preview_every=0)
    await executor.start()
    return JobService(storage, executor)


class CutAtFirstStep(RecordingReporter):
    """Takes the database away as the job shows its first step, as a PostgreSQL restart mid-job would."""

    def __init__(self, outage: Any) -> None:
        super().__init__()
        self.outage = outage
        self.told = 0

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await super().progress(step, total, preview_png)
        if step == 1:
            self.outage.cut()

    async def finished(self, outcome: Outcome) -> None:
        self.told += 1
        await super().finished(outcome)

    async def failed(self, message: str) -> None:
        self.told += 1
        await super().failed(message)


async def wait_for(condition: Any, seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a job's state, no event to wait on
            await asyncio.sleep(0.02)


async def test_a_result_waits_for_storage_and_is_told_once_it_is_recorded(storage_outage, tiny_engine):
    storage, outage = storage_outage
    service = await service_on(storage, tiny_engine)
    try:
        pending = await service.imagine(ADA, GUILD, SLOW)
        reporter = CutAtFirstStep(outage)
        task = pending.start(reporter)
        assert pending.handle is not None and task is not None
        await wait_for(lambda: pending.handle.done)  # type: ignore[union-attr]
        await asyncio.sleep(0.5)  # several tries to record it, all refused
        assert reporter.told == 0  # neither "done" nor "could not finish" while nothing is recorded

        outage.restore()
        async with asyncio.timeout(30):
            await task
        assert reporter.told == 1 and reporter.failure is None and reporter.outcome is not None
        record = await storage.jobs.get(pending.job.id)
        assert record is not None and record.status is JobStatus.DONE and len(record.images) == 1
    finally:
        await service.close()
        await service.executor.close()


async def test_a_failure_waits_for_storage_too(storage_outage, tiny_engine, monkeypatch):
    storage, outage = storage_outage
    service = await service_on(storage, tiny_engine)

    def run_then_break(*args: Any, **kwargs: Any) -> Any:
        kwargs["on_step"](1, 12, [None])
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(tiny_engine, "run_outcomes", run_then_break)
    try:
        pending = await service.imagine(ADA, GUILD, SLOW)
        reporter = CutAtFirstStep(outage)
        task = pending.start(reporter)
        await wait_for(lambda: pending.handle.done)  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        assert reporter.told == 0

        outage.restore()
        async with asyncio.timeout(30):
            await task
        assert (
            reporter.told == 1 and reporter.failure is not None and "the device fell over" in reporter.failure
        )
        record = await storage.jobs.get(pending.job.id)
        assert record is not None and record.status is JobStatus.FAILED
    finally:
        await service.close()
        await service.executor.close()


async def test_a_job_whose_outcome_cannot_be_recorded_before_a_restart_runs_again_and_is_told_once(
    storage_outage, tiny_engine
):
    storage, outage = storage_outage
    first = await service_on(storage, tiny_engine)
    pending = await first.imagine(ADA, GUILD, SLOW)
    before_restart = CutAtFirstStep(outage)
    pending.start(before_restart)
    await wait_for(lambda: pending.handle.done)  # type: ignore[union-attr]
    await first.close()  # the bot stops while the database is still away
    await first.executor.close()
    assert before_restart.told == 0  # the member was never told it failed

    outage.restore()
    record = await storage.jobs.get(pending.job.id)
    assert record is not None and record.status is JobStatus.RUNNING  # kept for the next start

    second = await service_on(storage, tiny_engine)
    after_restart = RecordingReporter()
    try:
        lost = await recover_unfinished(
            second, lambda job: after_restart, notify_lost=_never, front_end=FrontEnd.DISCORD
        )
        assert lost == []
        async with asyncio.timeout(60):
            await second.wait_idle()
        assert after_restart.outcome is not None and after_restart.failure is None
        record = await storage.jobs.get(pending.job.id)
        assert record is not None and record.status is JobStatus.DONE
        assert [image.seed for image in record.images] == [SLOW.seed]
    finally:
        await second.close()
        await second.executor.close()


async def _never(job: Any) -> None:
    raise AssertionError(f"job {job.id} was reported lost")


class BrokenAfterShowing(RecordingReporter):
    """Shows the result, then fails as linking the message to its job does when the database is full."""

    async def finished(self, outcome: Outcome) -> None:
        await super().finished(outcome)
        raise StorageUnavailable()


async def test_a_result_the_member_has_seen_is_never_replaced_by_an_error(tiny_engine, tmp_path: Path):
    storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'kaika.db'}", tmp_path / "images")
    service = await service_on(storage, tiny_engine)
    try:
        pending = await service.imagine(ADA, GUILD, QUICK)
        reporter = BrokenAfterShowing()
        async with asyncio.timeout(60):
            await pending.start(reporter)
        assert reporter.outcome is not None and reporter.failure is None
        record = await storage.jobs.get(pending.job.id)
        assert record is not None and record.status is JobStatus.DONE
        assert service.in_flight(ADA.user_id) == 0
    finally:
        await service.close()
        await service.executor.close()
        await storage.close()
