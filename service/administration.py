"""What Kaika's admins see and change, for every front end (the bot's /stats and /admin, the web dashboard):
the usage figures, and bans, the daily quota, the blocklist and who may press a job's buttons — one set of
calls, with one wording for what they report and refuse.

Settings other than bans are a guild's (`storage.guilds`); guild 0 holds those of jobs asked for outside any
server (the web companion, the command line, direct messages). ADMIN_USER_IDS administer every guild; a member
with Manage Server, the guilds where the bot last saw them with it; the command line's local user (`kaika web
--local`) every guild. The usage figures follow the same line (`figures_guilds`): a server's admin sees those of
their servers' jobs only, never another server's members or jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from gettext import ngettext

from pipeline.executor.base import Executor, ReportsWorkers, WorkerInfo
from service.errors import UserError
from service.settings import Settings
from storage import LOCAL_USER_ID, Storage
from storage.errors import InvalidValue, NotAllowed
from storage.records import ButtonPolicy, GuildSettings, UsageReport, Window

OUTSIDE_SERVERS = 0  # the guild id of settings for jobs asked for outside any server
REFUSAL = "Only Kaika's admins (ADMIN_USER_IDS) or members with Manage Server can do this."
NOT_THIS_SERVER = "You can change the settings of the servers where you have Manage Server only."
LOCAL_WORKER = "local"  # the executor runs jobs in this process (EXECUTOR=local)


# --- the figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Everything the dashboard shows for one window."""

    report: UsageReport
    jobs_by_model: dict[str | None, int]  # None: the default model
    queue_depth: int
    queues: dict[str, tuple[int, float]]  # "fast" / "relax" → (jobs, generation seconds)
    workers: list[WorkerInfo]
    first_day: date  # the chart's days, zero days included
    last_day: date
    guilds: tuple[int, ...] | None = None  # the guilds whose jobs the figures count (None: every job)


def chart_days(report: UsageReport, today: date) -> tuple[date, date]:
    """The first and last day the jobs-per-day chart of `report` shows: the window's (all time: from the first
    day with a job), up to today."""
    days = report.jobs_per_day
    first = report.since.date() if report.since else days[0][0] if days else today
    return first, today


async def fleet_workers(executor: Executor) -> list[WorkerInfo]:
    """The workers that run jobs: the fleet's that answer (EXECUTOR=celery), or this process with its models."""
    if isinstance(executor, ReportsWorkers):
        return await executor.workers()
    return [WorkerInfo(LOCAL_WORKER, tuple(executor.model_names))]


def figures_guilds(settings: Settings, user_id: int, managed_guilds: Iterable[int]) -> tuple[int, ...] | None:
    """Whose jobs' usage figures `user_id`, an admin, may see: None (every job, those asked for outside any
    server included) for ADMIN_USER_IDS and the command line's local user; else the jobs of `managed_guilds`
    only, the guilds where they have Manage Server, as another server's members and jobs are none of theirs."""
    if administers_everything(settings, user_id):
        return None
    return tuple(sorted({guild for guild in managed_guilds if guild != OUTSIDE_SERVERS}))


async def usage(
    storage: Storage,
    executor: Executor,
    window: Window | str,
    today: date,
    *,
    guilds: Iterable[int] | None = None,
) -> Usage:
    """The usage figures of `window` ("24h", "7d", "30d", "all"; anything else is refused by storage), of the
    jobs of `guilds` only when given (see `figures_guilds`). The queue depth and the workers are the fleet's:
    they tell nothing of anyone's jobs."""
    scope = None if guilds is None else tuple(guilds)
    report = await storage.stats.usage(window, guilds=scope)
    first, last = chart_days(report, today)
    return Usage(
        report=report,
        jobs_by_model=await storage.stats.jobs_by_model(report.window, guilds=scope),
        queue_depth=executor.queue_depth(),
        queues=await storage.stats.queues(report.window, guilds=scope),
        workers=await fleet_workers(executor),
        first_day=first,
        last_day=last,
        guilds=scope,
    )


# --- who may change what -------------------------------------------------------------------------------


def administers_everything(settings: Settings, user_id: int) -> bool:
    """ADMIN_USER_IDS, and the command line's local user (your own machine), administer Kaika as a whole."""
    return user_id in settings.admin_user_ids or user_id == LOCAL_USER_ID


async def administered_guilds(storage: Storage, settings: Settings, user_id: int) -> list[int]:
    """The guilds whose settings `user_id` may change: every known one (and OUTSIDE_SERVERS) for
    ADMIN_USER_IDS and the command line's local user (your own machine), else those where the bot last saw
    them with Manage Server."""
    if administers_everything(settings, user_id):
        return sorted({OUTSIDE_SERVERS, *await storage.guilds.known_ids()})
    return await storage.guilds.managed_by(user_id)


async def check_administers(storage: Storage, settings: Settings, user_id: int, guild_id: int) -> None:
    """Raise NotAllowed unless `user_id` may change `guild_id`'s settings."""
    if guild_id not in await administered_guilds(storage, settings, user_id):
        raise NotAllowed(NOT_THIS_SERVER)


# --- the settings, and how they read -----------------------------------------------------------------


def quota_text(quota: int | None) -> str:
    return (
        "unlimited" if quota is None else f"{quota} {ngettext('job', 'jobs', quota)} per member per 24 hours"
    )


def button_policy_text(policy: ButtonPolicy) -> str:
    return "anyone" if policy is ButtonPolicy.ANYONE else "the job's owner (and admins) only"


def parse_user_id(text: str) -> int:
    """A Discord user id typed by an admin (a mention `<@123>` works too)."""
    cleaned = text.strip().removeprefix("<@").removeprefix("!").removesuffix(">")
    if not cleaned.isdigit() or not 0 < int(cleaned) < 2**63:
        raise UserError(
            f"A member is named by their Discord user id, a number such as 80351110224678912 (got {text.strip()!r}); "
            "Discord shows it under Copy User ID once Developer Mode is on."
        )
    return int(cleaned)


def parse_quota(text: str) -> int | str | None:
    """A daily quota typed as text: empty is unlimited, a whole number is itself; anything else is passed on
    as it is, for `set_daily_quota` to refuse in storage's words."""
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        return int(cleaned)
    except ValueError:
        return cleaned


async def ban(storage: Storage, user_id: int) -> None:
    """Stop `user_id` from starting jobs anywhere (their jobs are refused when recorded)."""
    await storage.users.ban(user_id)


async def unban(storage: Storage, user_id: int) -> None:
    await storage.users.unban(user_id)


async def set_daily_quota(storage: Storage, guild_id: int, jobs: int | str | None) -> GuildSettings:
    """Jobs each member may start per 24 hours in `guild_id` (None: unlimited); a bad value changes nothing."""
    return await storage.guilds.update(guild_id, daily_quota=jobs)  # type: ignore[arg-type]


async def set_button_policy(storage: Storage, guild_id: int, who: ButtonPolicy | str) -> GuildSettings:
    """Who may press a job's buttons in `guild_id`: "anyone" or "owner" (and admins)."""
    return await storage.guilds.update(guild_id, button_policy=who)


async def block_term(storage: Storage, guild_id: int, term: str) -> GuildSettings:
    """Refuse prompts using `term` in `guild_id` (stored trimmed and lower-case)."""
    if not " ".join(term.split()):
        raise InvalidValue("Type a word or phrase to block.")
    current = (await storage.guilds.settings(guild_id)).blocklist
    return await storage.guilds.update(guild_id, blocklist=[*current, term])


async def unblock_term(storage: Storage, guild_id: int, term: str) -> GuildSettings:
    """Allow `term` again in `guild_id`; InvalidValue when it is not blocked there."""
    current = (await storage.guilds.settings(guild_id)).blocklist
    wanted = " ".join(term.lower().split())
    if wanted not in current:
        raise InvalidValue(f"'{term}' is not on the blocklist.")
    return await storage.guilds.update(guild_id, blocklist=[t for t in current if t != wanted])
