"""Commands about your own jobs: /info, /history, /show, /settings, /delete."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.buttons import grid_view, single_view
from bot.cogs.imagine import DEFAULT_FLAGS, header
from bot.interactions import Acknowledgement, is_admin, requester
from bot.jobs import JobGone, UserError
from bot.progress import fit_attachment
from pipeline.images import decode_image, display_grid, encode_png
from storage.records import JobRecord, JobStatus

if TYPE_CHECKING:
    from bot.app import KaikaBot


def message_link(job: JobRecord) -> str | None:
    if job.message_id is None or job.channel_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"


class UserCog(commands.Cog):
    def __init__(self, bot: KaikaBot) -> None:
        self.bot = bot

    @app_commands.command(name="info", description="Your usage, your jobs in flight and the limits that apply to you")
    async def info(self, interaction: discord.Interaction[KaikaBot]) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            services = self.bot.services
            used = await services.storage.jobs.jobs_last_24h(interaction.user.id)
            settings = await services.jobs.guild_settings(interaction.guild_id)
            quota = "unlimited" if settings.daily_quota is None or is_admin(interaction) else str(settings.daily_quota)
            defaults = await services.storage.users.defaults(interaction.user.id)
            lines = [
                f"Jobs in the last 24 hours: {used} (daily quota: {quota})",
                f"Your jobs queued or running: {services.jobs.in_flight(interaction.user.id)} "
                f"(at most {services.jobs.max_jobs_per_user} at once)",
                f"Jobs waiting or running for everyone: {services.executor.queue_depth()} (at most {services.jobs.max_queue})",
                f"Your defaults: {format_defaults(defaults)}",
            ]
            await ack.send("\n".join(lines))

    @app_commands.command(name="history", description="Your recent jobs, with links to their messages")
    async def history(self, interaction: discord.Interaction[KaikaBot]) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            jobs = await self.bot.services.storage.jobs.recent_for_user(interaction.user.id, limit=10)
            if not jobs:
                await ack.send("You have no jobs yet; try /imagine.")
                return
            lines = []
            for job in jobs:
                link = message_link(job)
                where = f" — {link}" if link else ""
                prompt = discord.utils.escape_markdown(job.prompt)[:80]
                lines.append(f"`{job.id}` {job.kind} {job.status}: {prompt}{where}")
            await ack.send("\n".join(lines))

    @app_commands.command(name="show", description="Post a finished job again, with its buttons")
    @app_commands.describe(job_id="The job's id (see /history)")
    async def show(self, interaction: discord.Interaction[KaikaBot], job_id: str) -> None:
        storage = self.bot.services.storage
        async with Acknowledgement(interaction) as ack:
            job = await storage.jobs.get(job_id.strip())
            if job is None or job.status is not JobStatus.DONE or not job.images:
                await ack.fail(JobGone() if job is None else JobNotDone(job))
                return
            await ack.defer()
        images = [await storage.images.get(image.storage_key) for image in job.images]
        data, extension = await asyncio.to_thread(_showable, images, interaction.filesize_limit)
        single = len(images) == 1
        view = single_view(job.id) if single else grid_view(job.id, len(images))
        await interaction.edit_original_response(
            content=header(job.prompt, job.kind, f"<@{job.owner_id}>"),
            attachments=[discord.File(io.BytesIO(data), filename=f"kaika_{job.id}.{extension}")],
            view=view,
        )

    @app_commands.command(name="settings", description="Your defaults for /imagine; with no options, shows them")
    @app_commands.describe(
        ar="Aspect ratio such as 16:9",
        stylize="--stylize 0 to 1000",
        chaos="--chaos 0 to 100",
        steps="--steps",
        model="--model",
        reset="Forget all your defaults",
    )
    async def settings(
        self,
        interaction: discord.Interaction[KaikaBot],
        ar: str | None = None,
        stylize: int | None = None,
        chaos: int | None = None,
        steps: int | None = None,
        model: str | None = None,
        reset: bool = False,
    ) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            services = self.bot.services
            given = {"ar": ar, "stylize": stylize, "chaos": chaos, "steps": steps, "model": model}
            given = {k: v for k, v in given.items() if v is not None}
            if reset:
                await services.storage.users.set_defaults(interaction.user.id, **dict.fromkeys(DEFAULT_FLAGS))
            if given:
                # The parser is the judge of what a flag may be; a bad value raises its RequestError.
                services.jobs.parse("settings check " + " ".join(f"--{k} {v}" for k, v in given.items()))
                await services.storage.users.set_defaults(interaction.user.id, **given)
            defaults = await services.storage.users.defaults(interaction.user.id)
            verb = "Saved. " if given or reset else ""
            await ack.send(f"{verb}Your defaults: {format_defaults(defaults)}")

    @app_commands.command(name="delete", description="Delete one of your jobs and its images (admins: any job)")
    @app_commands.describe(job_id="The job's id (see /history)")
    async def delete(self, interaction: discord.Interaction[KaikaBot], job_id: str) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            job = await self.bot.services.jobs.delete(job_id.strip(), requester(interaction))
            await ack.send(f"Deleted job `{job.id}` ({job.prompt[:80]}).")


class JobNotDone(UserError):
    def __init__(self, job: JobRecord) -> None:
        super().__init__(f"Job `{job.id}` is {job.status}; only finished jobs can be shown.")


def format_defaults(defaults: dict[str, object]) -> str:
    shown = [f"--{k} {v}" for k, v in sorted(defaults.items()) if k in DEFAULT_FLAGS]
    return " ".join(shown) if shown else "none"


def _showable(images: list[bytes], limit: int) -> tuple[bytes, str]:
    data = images[0] if len(images) == 1 else encode_png(display_grid([decode_image(i) for i in images]))
    return fit_attachment(data, limit)
