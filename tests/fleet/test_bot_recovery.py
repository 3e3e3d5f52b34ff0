"""The bot restarts while a worker runs its job: the new bot re-attaches and reports the result once."""

from __future__ import annotations

import asyncio

from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.recovery import recover_unfinished
from service.settings import Settings
from service.wiring import Services
from storage.records import FrontEnd, JobRecord, JobStatus
from tests.fixtures.reporters import RecordingReporter


class StepSignallingReporter(RecordingReporter):
    def __init__(self) -> None:
        super().__init__()
        self.stepped = asyncio.Event()

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await super().progress(step, total, preview_png)
        if step >= 1:
            self.stepped.set()


async def test_a_bot_restarted_mid_job_reattaches_and_reports_the_workers_result_once(
    worker, fleet_settings: Settings
):
    settings = fleet_settings
    first = await Services.open(settings)
    try:
        request = GenerationRequest(prompt="a lighthouse in fog", seed=11, width=64, height=64, steps=60)
        pending = await first.jobs.imagine(Requester(7, "ada"), Place(1, 2, FrontEnd.DISCORD), request)
        before = StepSignallingReporter()
        pending.start(before)
        async with asyncio.timeout(90):
            await before.stepped.wait()  # a worker is running it
    finally:
        await first.close()  # the bot goes away mid-job; the worker carries on
    assert before.outcome is None and before.failure is None

    second = await Services.open(settings)
    try:
        assert [job.id for job in await second.storage.jobs.unfinished()] == [pending.job.id]
        reporters: dict[str, RecordingReporter] = {}
        lost: list[JobRecord] = []

        def reporter_for(job: JobRecord) -> RecordingReporter:
            return reporters.setdefault(job.id, RecordingReporter())

        async def notify_lost(job: JobRecord) -> None:
            lost.append(job)

        assert (
            await recover_unfinished(second.jobs, reporter_for, notify_lost, front_end=FrontEnd.DISCORD) == []
        )
        async with asyncio.timeout(120):
            await second.jobs.wait_idle()

        after = reporters[pending.job.id]
        assert after.failure is None and not lost
        assert after.outcome is not None and len(after.outcome.images) == 4
        assert after.steps and after.steps[-1] == (60, 60)
        record = await second.storage.jobs.get(pending.job.id)
        assert record.status is JobStatus.DONE and record.owner_id == 7
        assert [image.seed for image in record.images] == [11, 12, 13, 14]
    finally:
        await second.close()

    # A third start finds nothing left to resume, so the result is never reported twice.
    third = await Services.open(settings)
    try:
        assert await third.storage.jobs.unfinished() == []
    finally:
        await third.close()
