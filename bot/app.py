"""The discord.py application: endpoints from settings, the command tree, the extensions, restart recovery."""

from __future__ import annotations

import asyncio
import logging
import sys

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.errors import reply_error
from bot.lifecycle import StopRequested, StopSignals, log_in, serve
from bot.progress import ChannelJobMessage
from bot.sync import sync_if_changed
from bot.views import (
    CUSTOM_ID,
    EDIT_SUBMIT_EVENT,
    REMIX_SUBMIT_EVENT,
    TOOL_ID,
    edit_submission,
    header,
    interrupted_notice,
    remix_submission,
    reroll_view,
)
from service.errors import USER_ERRORS, JobGone, SettingError
from service.health import Readiness, service_readiness
from service.jobs import Reporter
from service.operations import OperationsServer, on_loop
from service.readback import prompt_line
from service.recovery import recover_unfinished
from service.settings import Settings, configure_logging, load_settings
from service.wiring import Services
from storage.records import FrontEnd, JobRecord

log = logging.getLogger(__name__)

# The cogs, loaded as extensions: each module's `setup(bot)` adds its commands (and buttons).
EXTENSIONS = ("bot.cogs.imagine", "bot.cogs.user", "bot.cogs.admin")


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls to `api_base` and, when given, its websocket to `gateway_url`.

    discord.py keeps both as class attributes, so this is process-wide; every bot in one process
    talks to the same Discord.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


DMS_OFF = "Kaika makes images in servers only: use it in a channel of a server it is in."


class KaikaTree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Commands in direct messages only with ALLOW_DMS: Discord does not offer them there otherwise
        (the commands' contexts), and this refuses what a stale command list or a tampered client sends."""
        if interaction.guild_id is None and not self.client.settings.allow_dms:  # type: ignore[attr-defined]
            raise app_commands.NoPrivateMessage(DMS_OFF)
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await reply_error(interaction, error)


class KaikaBot(commands.Bot):
    """Kaika's bot. `services` holds the executor, storage and job service it wires together."""

    def __init__(self, settings: Settings, services: Services) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=KaikaTree,
            # Where Discord offers the commands: servers, and direct messages only with ALLOW_DMS.
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=settings.allow_dms, private_channel=settings.allow_dms
            ),
            allowed_mentions=discord.AllowedMentions(
                users=True, everyone=False, roles=False, replied_user=False
            ),
        )
        self.settings = settings
        self.services = services
        self.operations: OperationsServer | None = None  # METRICS_PORT's /metrics, /healthz, /readyz

    async def setup_hook(self) -> None:
        if self.settings.metrics_port:
            self.operations = OperationsServer(
                self.settings.metrics_host,
                self.settings.metrics_port,
                self.services.metrics.registry,
                on_loop(asyncio.get_running_loop(), self.readiness),
            )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await sync_if_changed(self.tree, self.settings.data_dir)
        await recover_unfinished(
            self.services.jobs,
            self.report_to_channel,
            self.tell_channel_about_interrupted_job,
            front_end=FrontEnd.DISCORD,
        )

    async def close(self) -> None:
        # Stop following jobs before the HTTP session goes, so no edit is cut off half-way.
        await self.services.jobs.close()
        await super().close()
        if self.operations is not None:
            await asyncio.to_thread(self.operations.close)
            self.operations = None

    async def readiness(self) -> Readiness:
        """Connected to Discord, and the service's parts work (see `service_readiness`)."""
        connected = self.is_ready() and not self.is_closed()
        parts = (await service_readiness(self.services)).problems
        return Readiness({"discord": None if connected else "not connected to Discord.", **parts})

    async def on_ready(self) -> None:
        log.info("Connected as %s to %d server(s)", self.user, len(self.guilds))

    def report_to_channel(self, job: JobRecord) -> Reporter:
        """Where a job resumed after a restart reports: a message in its channel (its interaction has expired)."""
        assert job.channel_id is not None  # the bot resumes the jobs asked in Discord, which have one
        return ChannelJobMessage(
            self.get_partial_messageable(job.channel_id),
            job.id,
            header(prompt_line(job), job.kind, f"<@{job.requester_id}>"),
            interval=self.settings.progress_edit_interval,
            storage=self.services.storage,
            previous_message_id=job.message_id,
        )

    async def tell_channel_about_interrupted_job(self, job: JobRecord) -> None:
        """Its interaction has expired by now, so the notice goes to the job's channel."""
        if job.channel_id is None:
            return
        await self.get_partial_messageable(job.channel_id).send(
            interrupted_notice(job), view=reroll_view(job.id)
        )

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Pass a Remix editor's or an `EditModal`'s submission on (as the event `remix_submit` or
        `edit_submit`), and answer presses of buttons
        whose custom_id is not Kaika's grammar at all (forged or ancient)."""
        if submitted := remix_submission(interaction):
            self.dispatch(REMIX_SUBMIT_EVENT, interaction, *submitted)
            return
        if asked := edit_submission(interaction):
            self.dispatch(EDIT_SUBMIT_EVENT, interaction, *asked)
            return
        if interaction.type is not discord.InteractionType.component:
            return
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if not any(grammar.fullmatch(custom_id) for grammar in (CUSTOM_ID, TOOL_ID)):
            await reply_error(interaction, JobGone())


async def run_bot(settings: Settings) -> None:
    """Open storage and the executor, connect to Discord, and run until the bot is closed or stopped by
    SIGTERM / SIGINT (see `bot.lifecycle`: running jobs get SHUTDOWN_GRACE seconds, the rest are parked)."""
    signals = StopSignals()
    signals.install()
    try:
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
        services = await signals.unless_requested(Services.open(settings))
        try:
            bot = KaikaBot(settings, services)
            async with bot:
                await signals.unless_requested(log_in(bot, settings))
                await serve(bot, signals)
        finally:
            await services.close()
    except StopRequested:
        log.info("Stopped while starting")
    finally:
        signals.uninstall()


def main(settings: Settings | None = None) -> int:
    """Run the bot until it is stopped; the exit status for `kaika bot` and `python -m bot`.

    A setting that keeps the bot from starting (a missing token, a database or Redis that cannot be
    reached, a model that cannot be loaded, a token Discord refuses) is one line on stderr and status 2.
    """
    import asyncio

    try:
        settings = settings or load_settings()
        configure_logging(settings.log_level)
        if not settings.discord_token:
            raise SettingError("DISCORD_TOKEN is not set; put the bot token in the environment or .env.")
        asyncio.run(run_bot(settings))
    except USER_ERRORS as error:
        print(f"kaika bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
