"""The admin usage report on a small data set whose every figure is worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from storage import GeneratedImage, InvalidValue, JobKind, Storage, UserUsage, Window
from tests.fixtures.storage import FakeClock

ADA, BOB, CY, DEE = 101, 202, 303, 404
GUILD_A, GUILD_B = 11, 22
REPORT_TIME = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def at(day: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}+00:00")


async def run(
    storage: Storage, clock: FakeClock, job_id: str, *, wait: float, images: int, compute: float
) -> None:
    clock.advance(seconds=wait)
    await storage.jobs.start(job_id)
    pngs = [GeneratedImage(f"{job_id}-{i}".encode(), i, 64, 64) for i in range(images)]
    await storage.jobs.finish(job_id, pngs, compute_seconds=compute)


@pytest.fixture
async def history(storage: Storage, clock: FakeClock) -> Storage:
    """All in guild GUILD_A:

    02-20 10:00  Ada   imagine    done, 4 images, 10 s compute, waited 8 s      (older than 30 days)
    03-10 09:00  Bob   imagine    failed after 1 s compute, waited 4 s
                 Bob   imagine    done, 4 images, 6 s, waited 0 s
                 Bob   imagine    cancelled while queued
    03-24 10:00  Bob   imagine    cancelled while queued                        (before the 7-day window)
    03-24 14:00  Cy    imagine    done, 4 images, 3 s, waited 8 s                (inside it, on its first day)
    03-28 08:00  Ada   variation  of Ada's image 2: done, 4 images, 5 s, waited 1 s
                 Cy    upscale    of Ada's image 1: done, 1 image, 2 s, waited 3 s  (owned by Ada)
    03-31 10:00  Cy    reroll     cancelled while queued
                 Ada   imagine    still queued
    """
    clock.now = at("2026-02-20", "10:00")
    first = await storage.jobs.create("imagine", ADA, guild_id=GUILD_A, prompt="a", requester_name="Ada")
    await run(storage, clock, first.id, wait=8, images=4, compute=10)

    clock.now = at("2026-03-10", "09:00")
    failing = await storage.jobs.create("imagine", BOB, guild_id=GUILD_A, prompt="b", requester_name="Bob")
    good = await storage.jobs.create("imagine", BOB, guild_id=GUILD_A, prompt="c")
    dropped = await storage.jobs.create("imagine", BOB, guild_id=GUILD_A, prompt="d")
    clock.advance(seconds=4)
    await storage.jobs.start(failing.id)
    await storage.jobs.fail(failing.id, "out of memory", compute_seconds=1)
    clock.now = at("2026-03-10", "09:00")
    await run(storage, clock, good.id, wait=0, images=4, compute=6)
    await storage.jobs.cancel(dropped.id)

    clock.now = at("2026-03-24", "10:00")
    await storage.jobs.cancel((await storage.jobs.create("imagine", BOB, guild_id=GUILD_A, prompt="f")).id)
    clock.now = at("2026-03-24", "14:00")
    cys = await storage.jobs.create("imagine", CY, guild_id=GUILD_A, prompt="g", requester_name="Cy")
    await run(storage, clock, cys.id, wait=8, images=4, compute=3)

    clock.now = at("2026-03-28", "08:00")
    variation = await storage.jobs.create(
        "variation", ADA, guild_id=GUILD_A, parent_job_id=first.id, parent_image_index=1
    )
    upscale = await storage.jobs.create(
        "upscale", CY, guild_id=GUILD_A, parent_job_id=first.id, parent_image_index=0
    )
    assert upscale.owner_id == ADA
    await run(storage, clock, variation.id, wait=1, images=4, compute=5)
    clock.now = at("2026-03-28", "08:00")
    await run(storage, clock, upscale.id, wait=3, images=1, compute=2)

    clock.now = at("2026-03-31", "10:00")
    reroll = await storage.jobs.create("reroll", CY, guild_id=GUILD_A, parent_job_id=first.id)
    await storage.jobs.cancel(reroll.id)
    await storage.jobs.create("imagine", ADA, guild_id=GUILD_A, prompt="e")

    clock.now = REPORT_TIME
    return storage


async def test_last_24_hours(history: Storage) -> None:
    report = await history.stats.usage("24h")
    assert (report.window, report.since) == (Window.DAY, at("2026-03-30", "12:00"))
    assert (report.jobs, report.images, report.compute_seconds) == (2, 0, 0.0)
    assert report.jobs_by_kind == {JobKind.REROLL: 1, JobKind.IMAGINE: 1}
    assert (report.done, report.failed, report.cancelled) == (0, 0, 1)
    assert report.failure_rate is None
    assert report.mean_queue_seconds is None
    assert report.leaderboard == [UserUsage(ADA, "Ada", 1, 0, 0.0), UserUsage(CY, "Cy", 1, 0, 0.0)]
    assert report.jobs_per_day == [(date(2026, 3, 31), 2)]


async def test_last_7_days(history: Storage) -> None:
    report = await history.stats.usage(Window.WEEK)
    assert report.since == at("2026-03-24", "12:00")
    assert (report.jobs, report.images, report.compute_seconds) == (5, 9, 10.0)
    assert report.jobs_by_kind == {
        JobKind.REROLL: 1,
        JobKind.IMAGINE: 2,
        JobKind.VARIATION: 1,
        JobKind.UPSCALE: 1,
    }
    assert (report.done, report.failed, report.cancelled) == (3, 0, 1)
    assert report.failure_rate == 0.0
    assert report.mean_queue_seconds == 4.0
    # Cy pressed the upscale, so its usage is Cy's even though Ada owns the image.
    assert report.leaderboard == [UserUsage(CY, "Cy", 3, 5, 5.0), UserUsage(ADA, "Ada", 2, 4, 5.0)]
    assert report.jobs_per_day == [(date(2026, 3, 24), 1), (date(2026, 3, 28), 2), (date(2026, 3, 31), 2)]


async def test_last_30_days(history: Storage) -> None:
    report = await history.stats.usage("30d")
    assert (report.jobs, report.images, report.compute_seconds) == (9, 13, 17.0)
    assert report.jobs_by_kind == {
        JobKind.IMAGINE: 6,
        JobKind.REROLL: 1,
        JobKind.VARIATION: 1,
        JobKind.UPSCALE: 1,
    }
    assert (report.done, report.failed, report.cancelled) == (4, 1, 3)
    assert report.failure_rate == 0.2
    assert report.mean_queue_seconds == 3.2
    assert report.leaderboard == [
        UserUsage(BOB, "Bob", 4, 4, 7.0),
        UserUsage(CY, "Cy", 3, 5, 5.0),
        UserUsage(ADA, "Ada", 2, 4, 5.0),
    ]
    assert report.jobs_per_day == [
        (date(2026, 3, 10), 3),
        (date(2026, 3, 24), 2),
        (date(2026, 3, 28), 2),
        (date(2026, 3, 31), 2),
    ]


EXPECTED_ALL = {
    "jobs": 10,
    "images": 17,
    "compute_seconds": 27.0,
    "jobs_by_kind": {JobKind.IMAGINE: 7, JobKind.REROLL: 1, JobKind.VARIATION: 1, JobKind.UPSCALE: 1},
    "done": 5,
    "failed": 1,
    "cancelled": 3,
    "mean_queue_seconds": 4.0,
    "leaderboard": [
        UserUsage(BOB, "Bob", 4, 4, 7.0),
        UserUsage(ADA, "Ada", 3, 8, 15.0),
        UserUsage(CY, "Cy", 3, 5, 5.0),
    ],
    "jobs_per_day": [
        (date(2026, 2, 20), 1),
        (date(2026, 3, 10), 3),
        (date(2026, 3, 24), 2),
        (date(2026, 3, 28), 2),
        (date(2026, 3, 31), 2),
    ],
}


def _figures(report) -> dict:  # type: ignore[no-untyped-def]
    return {name: getattr(report, name) for name in EXPECTED_ALL}


async def test_all_time_from_the_running_totals(history: Storage) -> None:
    report = await history.stats.usage("all")
    assert report.since is None
    assert _figures(report) == EXPECTED_ALL
    assert report.failure_rate == 1 / 6


async def test_rebuilt_totals_match_the_running_ones(history: Storage) -> None:
    await history.stats.rebuild_totals()
    assert _figures(await history.stats.usage("all")) == EXPECTED_ALL


async def test_leaderboard_length_and_deleted_jobs_still_count(history: Storage) -> None:
    report = await history.stats.usage("30d", top=1)
    assert [entry.user_id for entry in report.leaderboard] == [BOB]
    (bob_job,) = [job for job in await history.jobs.recent_for_user(BOB) if job.images]
    await history.jobs.delete(bob_job.id, BOB)
    assert (await history.stats.usage("30d")).jobs == 9
    assert _figures(await history.stats.usage("all")) == EXPECTED_ALL


async def test_an_empty_database_reports_zeros(storage: Storage) -> None:
    for window in Window:
        report = await storage.stats.usage(window)
        assert (report.jobs, report.images, report.compute_seconds, report.leaderboard) == (0, 0, 0.0, [])
        assert (report.failure_rate, report.mean_queue_seconds, report.jobs_per_day) == (None, None, [])


async def test_unknown_window_is_refused(storage: Storage) -> None:
    with pytest.raises(InvalidValue, match="Unknown window '1y'; expected one of 24h, 7d, 30d, all"):
        await storage.stats.usage("1y")


async def test_leaderboard_follows_new_jobs_and_the_turn_of_the_day(
    history: Storage, clock: FakeClock
) -> None:
    assert [entry.user_id for entry in (await history.stats.usage("7d")).leaderboard] == [CY, ADA]
    for _ in range(2):
        await history.jobs.create("imagine", BOB, prompt="today")
    report = await history.stats.usage("7d")
    assert report.leaderboard == [
        UserUsage(CY, "Cy", 3, 5, 5.0),
        UserUsage(ADA, "Ada", 2, 4, 5.0),
        UserUsage(BOB, "Bob", 2, 0, 0.0),
    ]

    clock.advance(days=1)  # Cy's 03-24 imagine leaves the window; 03-31 becomes a whole past day
    report = await history.stats.usage("7d")
    assert report.leaderboard == [
        UserUsage(ADA, "Ada", 2, 4, 5.0),
        UserUsage(BOB, "Bob", 2, 0, 0.0),
        UserUsage(CY, "Cy", 2, 1, 2.0),
    ]
    assert report.jobs == 6
    await history.jobs.create("imagine", CY, prompt="tomorrow")
    assert [(e.user_id, e.jobs) for e in (await history.stats.usage("7d")).leaderboard] == [
        (CY, 3),
        (ADA, 2),
        (BOB, 2),
    ]


async def test_jobs_per_model_in_a_window(storage: Storage, clock: FakeClock) -> None:
    clock.now = at("2026-03-01", "10:00")
    await storage.jobs.create("imagine", ADA, prompt="old", model="sdxl")
    clock.now = REPORT_TIME
    for model in (None, "sdxl", None, "flux", None):
        await storage.jobs.create("imagine", BOB, prompt="p", model=model)
    assert await storage.stats.jobs_by_model("7d") == {None: 3, "flux": 1, "sdxl": 1}
    assert await storage.stats.jobs_by_model("all") == {None: 3, "sdxl": 2, "flux": 1}
    assert list(await storage.stats.jobs_by_model("all")) == [None, "sdxl", "flux"]  # most used first


async def other_servers_jobs(storage: Storage, clock: FakeClock) -> None:
    """03-31 09:00  Bob  imagine in GUILD_B on sdxl, fast: done, 4 images, 9 s, waited 2 s
    03-31 09:30  Dee  imagine outside any server (the web, the command line): done, 4 images, 6 s"""
    clock.now = at("2026-03-31", "09:00")
    bobs = await storage.jobs.create(
        "imagine", BOB, guild_id=GUILD_B, prompt="b", model="sdxl", params={"queue": "fast"}
    )
    await run(storage, clock, bobs.id, wait=2, images=4, compute=9)
    clock.now = at("2026-03-31", "09:30")
    dees = await storage.jobs.create("imagine", DEE, prompt="d", requester_name="Dee")
    await run(storage, clock, dees.id, wait=0, images=4, compute=6)
    clock.now = REPORT_TIME


async def test_a_guilds_figures_are_its_own_jobs_only(history: Storage, clock: FakeClock) -> None:
    alone = {
        window: await history.stats.usage(window) for window in Window
    }  # GUILD_A's jobs are all there is
    await other_servers_jobs(history, clock)
    for window in Window:
        assert await history.stats.usage(window, guilds=[GUILD_A]) == alone[window], window
        assert (await history.stats.usage(window)).jobs == alone[window].jobs + 2  # everyone's: all of them
    assert _figures(await history.stats.usage("all", guilds={GUILD_A})) == EXPECTED_ALL
    assert [e.user_id for e in (await history.stats.usage("30d", top=1, guilds=[GUILD_A])).leaderboard] == [
        BOB
    ]

    theirs = await history.stats.usage("7d", guilds=[GUILD_B])
    assert (theirs.jobs, theirs.images, theirs.compute_seconds, theirs.mean_queue_seconds) == (1, 4, 9.0, 2.0)
    assert theirs.jobs_by_kind == {JobKind.IMAGINE: 1}
    assert (theirs.done, theirs.failed, theirs.cancelled) == (1, 0, 0)
    assert theirs.leaderboard == [UserUsage(BOB, "Bob", 1, 4, 9.0)]
    assert theirs.jobs_per_day == [(date(2026, 3, 31), 1)]

    both = await history.stats.usage("24h", guilds=[GUILD_A, GUILD_B])
    assert both.jobs == 3 and both.jobs_per_day == [(date(2026, 3, 31), 3)]
    assert both.leaderboard == [
        UserUsage(ADA, "Ada", 1, 0, 0.0),
        UserUsage(BOB, "Bob", 1, 4, 9.0),
        UserUsage(CY, "Cy", 1, 0, 0.0),
    ]
    # Dee asked outside any server: in everyone's figures only, never in a guild's.
    assert DEE in [e.user_id for e in (await history.stats.usage("24h")).leaderboard]
    assert all(DEE not in [e.user_id for e in report.leaderboard] for report in (theirs, both))


async def test_a_guilds_models_and_queues_are_its_own_jobs_only(history: Storage, clock: FakeClock) -> None:
    await other_servers_jobs(history, clock)
    assert await history.stats.jobs_by_model("all", guilds=[GUILD_A]) == {None: 10}
    assert await history.stats.jobs_by_model("24h", guilds=[GUILD_B]) == {"sdxl": 1}
    assert await history.stats.jobs_by_model("24h") == {None: 3, "sdxl": 1}
    assert await history.stats.queues("all", guilds=[GUILD_B]) == {"fast": (1, 9.0)}
    assert await history.stats.queues("all", guilds=[GUILD_A]) == {}


async def test_no_guilds_means_no_figures(history: Storage, clock: FakeClock) -> None:
    await other_servers_jobs(history, clock)
    for window in Window:
        report = await history.stats.usage(window, guilds=[])
        assert (report.jobs, report.images, report.leaderboard, report.jobs_per_day) == (0, 0, [], [])
        assert (report.failure_rate, report.mean_queue_seconds) == (None, None)
        assert await history.stats.jobs_by_model(window, guilds=()) == {}
        assert await history.stats.queues(window, guilds=()) == {}
