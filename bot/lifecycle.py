"""How the bot process starts and stops.

- Start: Discord's refusals (a bad token, an unreachable API) become a `SettingError` naming the
  setting, shown as one line by `bot.app.main`.
- Stop: SIGTERM (docker stop, systemd) or SIGINT (Ctrl-C) stops taking jobs (each request is answered
  "Kaika is restarting"), gives the running ones SHUTDOWN_GRACE seconds to finish, then closes: jobs
  still unfinished keep their `queued` / `running` records, which the next start resumes
  (`service.recovery`). A second signal skips what is left of the grace. As PID 1 in a container the
  process has no default SIGTERM action, so these handlers are what makes `docker stop` work.
- While connected, a heartbeat file in DATA_DIR, which `kaika healthcheck` reads (`service.health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import discord

from service.errors import SettingError
from service.health import HEARTBEAT_EVERY, heartbeat_path

if TYPE_CHECKING:
    from bot.app import KaikaBot
    from service.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class StopRequested(Exception):
    """A stop signal came while the bot was still starting: there is nothing to finish or park."""


class StopSignals:
    """SIGTERM and SIGINT: the first asks for a graceful stop, a second for an immediate one."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._received, signum)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)

    def _received(self, signum: signal.Signals) -> None:
        if self.requested.is_set():
            log.info("%s again: stopping without waiting for running jobs", signum.name)
            self.hurry.set()
        else:
            log.info("%s: stopping", signum.name)
            self.requested.set()

    async def unless_requested(self, work: Awaitable[T]) -> T:
        """`work`'s result; StopRequested (and `work` cancelled) when a stop is asked for first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.requested.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise StopRequested()
        return task.result()


async def log_in(bot: discord.Client, settings: Settings) -> None:
    """`bot.login` (which also runs `setup_hook`), with Discord's start-up refusals as SettingError."""
    try:
        await bot.login(settings.discord_token)
    except discord.LoginFailure as error:
        raise SettingError(
            "DISCORD_TOKEN was refused by Discord (401 Unauthorized); copy the bot's token again from the "
            "developer portal (Bot, Reset Token)."
        ) from error
    except (aiohttp.ClientError, OSError) as error:
        raise SettingError(
            f"DISCORD_API_BASE={settings.discord_api_base}: Discord cannot be reached "
            f"({str(error) or type(error).__name__}); check the network (and the setting, if it is not "
            "Discord's own https://discord.com/api/v10)."
        ) from error


async def serve(bot: KaikaBot, signals: StopSignals) -> None:
    """Stay connected to Discord (with the heartbeat) until the bot is closed or a stop is asked for."""
    connection = asyncio.create_task(bot.connect())
    heartbeat = asyncio.create_task(keep_heartbeat(bot, bot.settings.data_dir))
    stop = asyncio.create_task(signals.requested.wait())
    try:
        await asyncio.wait({connection, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stop.done():
            heartbeat.cancel()
            await shut_down(bot, bot.settings.shutdown_grace, signals.hurry)
        await connection
    finally:
        for task in (heartbeat, stop, connection):
            task.cancel()
        await asyncio.gather(heartbeat, stop, connection, return_exceptions=True)
        await asyncio.to_thread(_remove, heartbeat_path(bot.settings.data_dir))


async def shut_down(bot: KaikaBot, grace: float, hurry: asyncio.Event) -> None:
    """Take no new jobs, give the running ones up to `grace` seconds (or until `hurry`), then close the bot:
    the jobs still unfinished are parked, their records left for the next start to resume."""
    jobs = bot.services.jobs
    log.info("Taking no new jobs; %d in flight get up to %g s to finish", jobs.capacity.in_flight(), grace)
    drained = asyncio.create_task(jobs.drain(grace))
    hurried = asyncio.create_task(hurry.wait())
    await asyncio.wait({drained, hurried}, return_when=asyncio.FIRST_COMPLETED)
    for task in (drained, hurried):
        task.cancel()
    await asyncio.gather(drained, hurried, return_exceptions=True)
    parked = jobs.capacity.in_flight()
    if parked:
        log.info("Parked %d unfinished job(s); the next start resumes them", parked)
    await bot.close()


async def keep_heartbeat(bot: discord.Client, data_dir: Path) -> None:
    """Touch DATA_DIR's heartbeat file every HEARTBEAT_EVERY seconds while the bot is connected to the
    gateway (not while it reconnects)."""
    path = heartbeat_path(data_dir)
    await bot.wait_until_ready()
    while True:
        if not bot.is_closed() and bot.ws is not None and bot.ws.open:
            try:
                await asyncio.to_thread(path.touch)
            except OSError as error:
                log.warning("Could not write the heartbeat %s: %s", path, error)
        await asyncio.sleep(HEARTBEAT_EVERY)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
