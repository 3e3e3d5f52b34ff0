"""What admins see and change, as every front end calls it: usage figures, who administers which guild, and
the settings with their one wording."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline.executor.base import WorkerInfo
from service import administration
from service.administration import (
    OUTSIDE_SERVERS,
    administered_guilds,
    chart_days,
    check_administers,
    figures_guilds,
    parse_quota,
    parse_user_id,
)
from service.errors import UserError
from service.settings import Settings
from storage import LOCAL_USER_ID, Storage
from storage.errors import InvalidValue, NotAllowed
from storage.records import ButtonPolicy, UsageReport, Window
from tests.fixtures.storage import FakeClock

ADMIN, MANAGER, MEMBER = 1, 2, 3
SETTINGS = Settings(_env_file=None, admin_user_ids=[ADMIN])


def report(since: datetime | None, days: list[tuple[date, int]]) -> UsageReport:
    return UsageReport(
        window=Window.ALL if since is None else Window.WEEK, since=since, jobs=0, images=0, compute_seconds=0.0,
        jobs_by_kind={}, done=0, failed=0, cancelled=0, mean_queue_seconds=None, leaderboard=[], jobs_per_day=days,
    )  # fmt: skip


def test_the_chart_shows_the_window_or_all_time_from_its_first_day_up_to_today():
    today = date(2026, 3, 31)
    since = datetime(2026, 3, 24, 12, tzinfo=UTC)
    assert chart_days(report(since, []), today) == (date(2026, 3, 24), today)
    assert chart_days(report(None, [(date(2026, 2, 1), 3)]), today) == (date(2026, 2, 1), today)
    assert chart_days(report(None, []), today) == (today, today)


async def test_usage_gathers_the_report_models_queue_and_local_worker(storage: Storage, clock: FakeClock):
    class Executor:
        @property
        def model_names(self) -> list[str]:
            return ["demo", "sdxl"]

        def queue_depth(self) -> int:
            return 2

    await storage.jobs.create("imagine", MEMBER, prompt="p", model="sdxl")
    await storage.jobs.create("imagine", MEMBER, prompt="p")
    figures = await administration.usage(storage, Executor(), "7d", clock.now.date())  # type: ignore[arg-type]
    assert figures.report.jobs == 2 and figures.report.window is Window.WEEK
    assert figures.jobs_by_model == {None: 1, "sdxl": 1}
    assert figures.queue_depth == 2
    assert figures.workers == [WorkerInfo("local", ("demo", "sdxl"))]
    today = clock.now.date()
    assert (figures.first_day, figures.last_day) == ((clock.now - timedelta(days=7)).date(), today)
    with pytest.raises(InvalidValue, match="window"):
        await administration.usage(storage, Executor(), "1y", clock.now.date())  # type: ignore[arg-type]


async def test_admins_administer_every_known_guild_and_managers_only_their_own(storage: Storage):
    await storage.guilds.update(7, daily_quota=1)
    await storage.signin.note_server_manager(MANAGER, 9, True, "Manager")
    assert await administered_guilds(storage, SETTINGS, ADMIN) == [OUTSIDE_SERVERS, 7, 9]
    assert await administered_guilds(storage, SETTINGS, MANAGER) == [9]
    assert await administered_guilds(storage, SETTINGS, MEMBER) == []
    assert await administered_guilds(storage, SETTINGS, LOCAL_USER_ID) == [OUTSIDE_SERVERS, 7, 9]
    await check_administers(storage, SETTINGS, MANAGER, 9)
    await check_administers(storage, SETTINGS, ADMIN, 7)
    for user, guild in ((MANAGER, 7), (MANAGER, OUTSIDE_SERVERS), (MEMBER, 9)):
        with pytest.raises(NotAllowed, match="servers where you have Manage Server only"):
            await check_administers(storage, SETTINGS, user, guild)


def test_admin_user_ids_and_the_local_user_see_every_jobs_figures_managers_their_servers_only():
    assert figures_guilds(SETTINGS, ADMIN, [9]) is None
    assert figures_guilds(SETTINGS, ADMIN, []) is None
    assert figures_guilds(SETTINGS, LOCAL_USER_ID, []) is None
    assert figures_guilds(SETTINGS, MANAGER, [9, 7, 9]) == (7, 9)
    # Jobs outside any server (the web, the command line) are the whole of Kaika's: never a manager's.
    assert figures_guilds(SETTINGS, MANAGER, [OUTSIDE_SERVERS, 9]) == (9,)
    assert figures_guilds(SETTINGS, MEMBER, []) == ()


async def test_usage_of_some_guilds_counts_their_jobs_only(storage: Storage, clock: FakeClock):
    class Executor:
        model_names = ("demo",)

        def queue_depth(self) -> int:
            return 3

    await storage.jobs.create("imagine", MEMBER, prompt="p", guild_id=9, model="sdxl")
    await storage.jobs.create("imagine", MEMBER, prompt="p", guild_id=7)
    await storage.jobs.create("imagine", MEMBER, prompt="p")  # outside any server
    today = clock.now.date()
    mine = await administration.usage(storage, Executor(), "7d", today, guilds=(9,))  # type: ignore[arg-type]
    assert (mine.report.jobs, mine.jobs_by_model, mine.guilds) == (1, {"sdxl": 1}, (9,))
    assert mine.queue_depth == 3  # the fleet's: it tells nothing of anyone's jobs
    everyone = await administration.usage(storage, Executor(), "7d", today)  # type: ignore[arg-type]
    assert (everyone.report.jobs, everyone.guilds) == (3, None)
    nothing = await administration.usage(storage, Executor(), "7d", today, guilds=())  # type: ignore[arg-type]
    assert (nothing.report.jobs, nothing.jobs_by_model) == (0, {})


def test_typed_values_are_read_or_refused_clearly():
    assert parse_user_id(" 80351110224678912 ") == 80351110224678912
    assert parse_user_id("<@123>") == 123 and parse_user_id("<@!123>") == 123
    for bad in ("bob", "", "-5", "12.5", "0"):
        with pytest.raises(UserError, match=r"a number such as 80351110224678912 \(got "):
            parse_user_id(bad)
    assert parse_quota("") is None and parse_quota(" 12 ") == 12 and parse_quota("-3") == -3
    assert parse_quota("many") == "many"


async def test_settings_change_through_one_set_of_calls_and_bad_values_change_nothing(storage: Storage):
    assert (await administration.set_daily_quota(storage, 5, parse_quota("4"))).daily_quota == 4
    for bad, shown in (("many", "'many'"), ("-3", "-3")):
        with pytest.raises(InvalidValue, match=rf"whole number of jobs, 0 or more \(got {shown}\)"):
            await administration.set_daily_quota(storage, 5, parse_quota(bad))
    assert administration.quota_text(4) == "4 jobs per member per 24 hours"
    assert administration.quota_text(1) == "1 job per member per 24 hours"
    assert administration.quota_text(None) == "unlimited"

    settings = await administration.set_button_policy(storage, 5, "owner")
    assert administration.button_policy_text(settings.button_policy) == "the job's owner (and admins) only"
    with pytest.raises(InvalidValue, match="button policy"):
        await administration.set_button_policy(storage, 5, "nobody")
    assert (await storage.guilds.settings(5)).button_policy is ButtonPolicy.OWNER

    assert (await administration.block_term(storage, 5, "  Big   Spiders ")).blocklist == ("big spiders",)
    with pytest.raises(InvalidValue, match="Type a word or phrase to block"):
        await administration.block_term(storage, 5, "   ")
    with pytest.raises(InvalidValue, match=r"'ants' is not on the blocklist\."):
        await administration.unblock_term(storage, 5, "ants")
    assert (await administration.unblock_term(storage, 5, "BIG spiders")).blocklist == ()

    await administration.ban(storage, 42)
    assert await storage.users.is_banned(42)
    await administration.unban(storage, 42)
    assert not await storage.users.is_banned(42)
