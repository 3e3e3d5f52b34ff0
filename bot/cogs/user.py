"""Commands about your own jobs: /info, /history, /show, /settings, /delete."""

from __future__ import annotations

import asyncio
import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledgement, KaikaCog
from bot.limits import MemberText, Part, fit
from bot.progress import fit_attachment
from bot.views import header, message_link, result_view
from pipeline.images import decode_image, display_grid, encode_png
from service.defaults import format_defaults
from service.errors import JobGone, JobNotDone
from storage.records import JobStatus

# A prompt named in a list or a confirmation is shown to this many characters at most.
PROMPT_IN_LIST = 80


class UserCog(KaikaCog):
    @app_commands.command(
        name="info", description="Your usage, your jobs in flight and the limits that apply to you"
    )
    async def info(self, interaction: discord.Interaction) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            services = self.services
            used = await services.storage.jobs.jobs_last_24h(interaction.user.id)
            settings = await services.jobs.guild_settings(interaction.guild_id)
            quota = (
                "unlimited"
                if settings.daily_quota is None or self.is_admin(interaction)
                else str(settings.daily_quota)
            )
            defaults = await services.storage.users.defaults(interaction.user.id)
            lines = [
                f"Jobs in the last 24 hours: {used} (daily quota: {quota})",
                f"Your jobs queued or running: {services.jobs.in_flight(interaction.user.id)} "
                f"(at most {services.jobs.capacity.max_jobs_per_user} at once)",
                f"Jobs waiting or running for everyone: {services.jobs.capacity.in_flight()} (at most {services.jobs.capacity.max_queue})",
                f"Your defaults: {format_defaults(defaults)}",
            ]
            await ack.send("\n".join(lines))

    @app_commands.command(name="history", description="Your recent jobs, with links to their messages")
    async def history(self, interaction: discord.Interaction) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            jobs = await self.services.storage.jobs.recent_for_user(interaction.user.id, limit=10)
            if not jobs:
                await ack.send("You have no jobs yet; try /imagine.")
                return
            lines: list[Part] = []
            for job in jobs:
                link = message_link(job)
                where = f" — {link}" if link else ""
                lines += ["\n" if lines else "", f"`{job.id}` {job.kind} {job.status}: "]
                lines += [MemberText(job.prompt, at_most=PROMPT_IN_LIST), where]
            await ack.send(fit(*lines))

    @app_commands.command(name="show", description="Post a finished job again, with its buttons")
    @app_commands.describe(job_id="The job's id (see /history)")
    async def show(self, interaction: discord.Interaction, job_id: str) -> None:
        storage = self.services.storage
        async with Acknowledgement(interaction) as ack:
            job = await storage.jobs.get(job_id.strip())
            if job is None or job.status is not JobStatus.DONE or not job.images:
                await ack.fail(JobGone() if job is None else JobNotDone(job))
                return
            await ack.defer()
        images = [await storage.images.get(image.storage_key) for image in job.images]
        data, extension = await asyncio.to_thread(_showable, images, interaction.filesize_limit)
        view = result_view(job.id, len(images), self.services.jobs.offered(job.model))
        await interaction.edit_original_response(
            content=fit(*header(job.prompt, job.kind, f"<@{job.owner_id}>")),
            attachments=[discord.File(io.BytesIO(data), filename=f"kaika_{job.id}.{extension}")],
            view=view,
        )

    @app_commands.command(
        name="settings", description="Your defaults for /imagine; with no options, shows them"
    )
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
        interaction: discord.Interaction,
        ar: str | None = None,
        stylize: int | None = None,
        chaos: int | None = None,
        steps: int | None = None,
        model: str | None = None,
        reset: bool = False,
    ) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            given = {"ar": ar, "stylize": stylize, "chaos": chaos, "steps": steps, "model": model}
            given = {k: v for k, v in given.items() if v is not None}
            defaults = await self.services.jobs.save_defaults(interaction.user.id, given, reset=reset)
            verb = "Saved. " if given or reset else ""
            await ack.send(f"{verb}Your defaults: {format_defaults(defaults)}")

    @app_commands.command(
        name="delete", description="Delete one of your jobs and its images (admins: any job)"
    )
    @app_commands.describe(job_id="The job's id (see /history)")
    async def delete(self, interaction: discord.Interaction, job_id: str) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            job = await self.services.jobs.delete(job_id.strip(), self.requester(interaction))
            await ack.send(
                fit(f"Deleted job `{job.id}` (", MemberText(job.prompt, at_most=PROMPT_IN_LIST), ").")
            )


def _showable(images: list[bytes], limit: int) -> tuple[bytes, str]:
    data = images[0] if len(images) == 1 else encode_png(display_grid([decode_image(i) for i in images]))
    return fit_attachment(data, limit)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(UserCog(bot.services, bot.settings))  # type: ignore[attr-defined]
