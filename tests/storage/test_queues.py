"""The fast and relaxed queues in storage, on SQLite and PostgreSQL: a member's fast time used in the last 24
hours, and /stats' jobs and generation time per queue."""

from __future__ import annotations

from storage import GeneratedImage, JobKind, Storage, Window
from tests.fixtures.storage import FakeClock

ADA, BOB = 101, 202


async def ran(storage: Storage, user: int, queue: str | None, compute: float) -> None:
    params = {} if queue is None else {"queue": queue}
    job = await storage.jobs.create(JobKind.IMAGINE, user, prompt="a harbour", params=params)
    await storage.jobs.start(job.id)
    await storage.jobs.finish(job.id, [GeneratedImage(job.id.encode(), 1, 64, 64)], compute_seconds=compute)


async def test_fast_time_and_queue_totals(storage: Storage, clock: FakeClock):
    await ran(storage, ADA, "fast", 30.0)
    clock.advance(seconds=25 * 3600)  # a day and an hour later: the first job no longer counts for today
    await ran(storage, ADA, "fast", 12.5)
    await ran(storage, ADA, "relax", 40.0)
    await ran(storage, BOB, "fast", 7.0)
    await ran(storage, BOB, None, 3.0)  # recorded before queues existed

    assert await storage.jobs.fast_seconds_last_24h(ADA) == 12.5
    assert await storage.jobs.fast_seconds_last_24h(BOB) == 7.0
    assert await storage.jobs.fast_seconds_last_24h(303) == 0.0
    assert await storage.stats.queues(Window.DAY) == {"fast": (2, 19.5), "relax": (1, 40.0)}
    assert await storage.stats.queues("all") == {"fast": (3, 49.5), "relax": (1, 40.0)}
