"""/imagine and the job buttons: check, acknowledge, record, then report as the job runs."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.flow import start_job
from bot.interactions import KaikaCog, place
from bot.limits import fit_choices
from bot.views import PRESS_EVENT, JobButton
from service.jobs import ButtonAction, PendingJob


class ImagineCog(KaikaCog):
    @app_commands.command(
        name="imagine",
        description="Create four images from a prompt (flags: --ar --seed --no --steps --s --c --model)",
    )
    @app_commands.describe(
        prompt="What to draw, then flags such as --ar 16:9 --seed 7 --no text",
        model="The model to use (same as --model)",
    )
    async def imagine(self, interaction: discord.Interaction, prompt: str, model: str | None = None) -> None:
        jobs = self.services.jobs

        async def prepare() -> PendingJob:
            request = await jobs.parse_for(interaction.user.id, prompt, model)
            return await jobs.imagine(self.requester(interaction), place(interaction), request)

        await start_job(
            interaction, self.services, prepare, progress_interval=self.config.progress_edit_interval
        )

    @imagine.autocomplete("model")
    async def model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = self.services.model_names
        return fit_choices(
            app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()
        )

    @commands.Cog.listener(f"on_{PRESS_EVENT}")
    async def press(
        self, interaction: discord.Interaction, action: ButtonAction, job_id: str, index: int
    ) -> None:
        """A job button was pressed (see `bot.views.JobButton`)."""

        async def prepare() -> PendingJob:
            return await self.services.jobs.press(
                self.requester(interaction), place(interaction), action, job_id, index
            )

        await start_job(
            interaction, self.services, prepare, progress_interval=self.config.progress_edit_interval
        )


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(JobButton)
    await bot.add_cog(ImagineCog(bot.services, bot.settings))  # type: ignore[attr-defined]
