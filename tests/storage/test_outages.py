"""No database error leaves the storage layer: every public method turns an unreachable database (or a full
disk) into StorageUnavailable, changes nothing, and works again once the database is back. Also the
withdrawal of a job the executor refused, which leaves no trace in the figures."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from storage import (
    GeneratedImage,
    IllegalTransition,
    JobNotFound,
    JobStatus,
    Storage,
    StorageFault,
    StorageUnavailable,
)
from storage.accounts import GuildRepository, UserRepository
from storage.jobs import JobRepository
from storage.signin import SigninRepository
from storage.stats import StatsRepository
from storage.uploads import UploadRepository
from tests.fixtures.storage import FakeClock

ADA, BO = 11, 12
LINK = "a" * 64  # a sign-in link's token hash
PNG = GeneratedImage(data=b"\x89PNG not really", seed=1, width=64, height=64)


class World:
    """Records made before the outage, for the calls to act on."""

    queued: str
    running: str
    done: str
    upload: str


async def build(storage: Storage) -> World:
    world = World()
    world.queued = (await storage.jobs.create("imagine", ADA, prompt="queued", channel_id=3)).id
    world.running = (await storage.jobs.create("imagine", ADA, prompt="running")).id
    await storage.jobs.start(world.running)
    world.done = (await storage.jobs.create("imagine", BO, prompt="done")).id
    await storage.jobs.start(world.done)
    await storage.jobs.finish(world.done, [PNG], 1.0)
    world.upload = (await storage.uploads.add(ADA, PNG.data, 64, 64)).id
    await storage.signin.add_link(LINK, ADA, "ada", timedelta(minutes=10))
    await storage.signin.note_server_manager(ADA, 5, True, "ada")
    return world


Call = Callable[[Storage, World], Awaitable[object]]
# Every public method of every repository, and of Storage, with arguments that would succeed.
CALLS: dict[str, Call] = {
    "jobs.create": lambda s, w: s.jobs.create("imagine", ADA, prompt="new", daily_quota=10),
    "jobs.start": lambda s, w: s.jobs.start(w.queued),
    "jobs.finish": lambda s, w: s.jobs.finish(w.running, [PNG], 2.0),
    "jobs.fail": lambda s, w: s.jobs.fail(w.running, "boom"),
    "jobs.cancel": lambda s, w: s.jobs.cancel(w.queued),
    "jobs.withdraw": lambda s, w: s.jobs.withdraw(w.queued),
    "jobs.unfinished": lambda s, w: s.jobs.unfinished(),
    "jobs.get": lambda s, w: s.jobs.get(w.done),
    "jobs.recent_for_user": lambda s, w: s.jobs.recent_for_user(ADA),
    "jobs.lineage": lambda s, w: s.jobs.lineage(w.done),
    "jobs.jobs_last_24h": lambda s, w: s.jobs.jobs_last_24h(ADA),
    "jobs.fast_seconds_last_24h": lambda s, w: s.jobs.fast_seconds_last_24h(ADA),
    "jobs.set_message": lambda s, w: s.jobs.set_message(w.done, 99, 3),
    "jobs.delete": lambda s, w: s.jobs.delete(w.done, BO),
    "jobs.children": lambda s, w: s.jobs.children(w.done),
    "jobs.gallery": lambda s, w: s.jobs.gallery(ADA, text="queued"),
    "jobs.gallery_models": lambda s, w: s.jobs.gallery_models(ADA),
    "users.get": lambda s, w: s.users.get(ADA),
    "users.ban": lambda s, w: s.users.ban(BO),
    "users.unban": lambda s, w: s.users.unban(BO),
    "users.is_banned": lambda s, w: s.users.is_banned(ADA),
    "users.defaults": lambda s, w: s.users.defaults(ADA),
    "users.set_defaults": lambda s, w: s.users.set_defaults(ADA, ar="16:9"),
    "users.banned": lambda s, w: s.users.banned(),
    "guilds.settings": lambda s, w: s.guilds.settings(5),
    "guilds.update": lambda s, w: s.guilds.update(5, daily_quota=3),
    "guilds.known_ids": lambda s, w: s.guilds.known_ids(),
    "guilds.managed_by": lambda s, w: s.guilds.managed_by(ADA),
    "uploads.add": lambda s, w: s.uploads.add(BO, PNG.data, 64, 64),
    "uploads.get": lambda s, w: s.uploads.get(w.upload),
    "uploads.count_for": lambda s, w: s.uploads.count_for(ADA),
    "uploads.discard": lambda s, w: s.uploads.discard(w.upload),
    "signin.add_link": lambda s, w: s.signin.add_link("b" * 64, BO, "bo", timedelta(minutes=10)),
    "signin.claim_link": lambda s, w: s.signin.claim_link(LINK),
    "signin.note_server_manager": lambda s, w: s.signin.note_server_manager(BO, 5, True, "bo"),
    "signin.manages_a_server": lambda s, w: s.signin.manages_a_server(ADA),
    "signin.web_sessions_generation": lambda s, w: s.signin.web_sessions_generation(ADA),
    "signin.end_web_sessions": lambda s, w: s.signin.end_web_sessions(ADA, "ada"),
    "stats.usage": lambda s, w: s.stats.usage("24h"),
    "stats.queues": lambda s, w: s.stats.queues("24h"),
    "stats.jobs_by_model": lambda s, w: s.stats.jobs_by_model("24h", guilds=[5]),
    "stats.rebuild_totals": lambda s, w: s.stats.rebuild_totals(),
    "sweep_orphans": lambda s, w: s.sweep_orphans(timedelta(0)),
    "ping": lambda s, w: s.ping(),
}


def public_methods(cls: type, prefix: str) -> set[str]:
    return {
        f"{prefix}{name}"
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


def test_the_outage_tests_cover_every_public_storage_method():
    expected = (
        public_methods(JobRepository, "jobs.")
        | public_methods(UserRepository, "users.")
        | public_methods(GuildRepository, "guilds.")
        | public_methods(StatsRepository, "stats.")
        | public_methods(UploadRepository, "uploads.")
        | public_methods(SigninRepository, "signin.")
        | public_methods(Storage, "")
    ) - {
        "open",  # opening and closing are the application's start and stop, not calls on records
        "close",
        "uploads.data",  # reads the picture's file only: no database call to lose
    }
    assert set(CALLS) == expected


async def snapshot(storage: Storage, world: World) -> tuple:
    jobs = [await storage.jobs.get(job_id) for job_id in (world.queued, world.running, world.done)]
    report = await storage.stats.usage("all")
    return (
        [(job.status, job.message_id, len(job.images)) for job in jobs if job is not None],
        (report.jobs, report.done, report.failed, report.cancelled),
        await storage.users.is_banned(BO),
        await storage.users.defaults(ADA),
        (await storage.guilds.settings(5)).daily_quota,
    )


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_call_while_the_database_is_unreachable_says_so_changes_nothing_and_works_afterwards(
    storage_outage, name
):
    storage, outage = storage_outage
    world = await build(storage)
    before = await snapshot(storage, world)

    outage.cut()
    with pytest.raises(StorageUnavailable) as raised:
        await CALLS[name](storage, world)
    assert str(raised.value) == "Kaika's storage is unavailable right now; try again in a minute."
    outage.restore()

    assert await snapshot(storage, world) == before
    await CALLS[name](storage, world)  # the same call, once the database is back


async def test_a_statement_the_database_refuses_for_good_is_a_fault_not_an_outage(storage):
    def refuse(*_args):
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    event.listen(storage.engine.sync_engine, "before_cursor_execute", refuse)
    try:
        with pytest.raises(StorageFault, match="could not read or write its records"):
            await storage.jobs.create("imagine", ADA, prompt="p")
    finally:
        event.remove(storage.engine.sync_engine, "before_cursor_execute", refuse)


async def test_a_withdrawn_job_leaves_no_trace_in_records_figures_or_quota(
    storage: Storage, clock: FakeClock
):
    kept = await storage.jobs.create("imagine", ADA, prompt="kept")
    refused = await storage.jobs.create("imagine", ADA, prompt="refused by the executor")
    await storage.jobs.withdraw(refused.id)

    assert await storage.jobs.get(refused.id) is None
    assert [job.id for job in await storage.jobs.recent_for_user(ADA)] == [kept.id]
    assert await storage.jobs.jobs_last_24h(ADA) == 1
    for window in ("24h", "all"):
        report = await storage.stats.usage(window)
        assert (report.jobs, report.failed, report.failure_rate) == (1, 0, None)
        assert [(user.user_id, user.jobs) for user in report.leaderboard] == [(ADA, 1)]
    await storage.stats.rebuild_totals()  # the running totals agree with the rows
    assert (await storage.stats.usage("all")).jobs == 1


async def test_only_a_queued_job_can_be_withdrawn(storage: Storage):
    job = await storage.jobs.create("imagine", ADA, prompt="p")
    await storage.jobs.start(job.id)
    with pytest.raises(IllegalTransition, match="running; it cannot become withdrawn"):
        await storage.jobs.withdraw(job.id)
    assert (await storage.jobs.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]
    with pytest.raises(JobNotFound):
        await storage.jobs.withdraw("nosuchjob000")
