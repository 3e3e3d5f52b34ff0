"""/imagine and the job buttons: check, acknowledge, record, then report as the job runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledgement, place, requester
from bot.jobs import ButtonAction, PendingJob
from bot.progress import JobMessage
from storage.records import JobKind

if TYPE_CHECKING:
    from bot.app import KaikaBot

# Flags a saved default (/settings) may supply when the prompt does not give them.
DEFAULT_FLAGS = ("ar", "stylize", "chaos", "steps", "model")


def with_defaults(prompt: str, model: str | None, defaults: dict[str, object]) -> str:
    """The prompt with `--model` from the option and the user's saved defaults for flags it lacks."""
    text = prompt
    lowered = f" {prompt.lower()}"
    if model:
        text += f" --model {model}"
    for flag in DEFAULT_FLAGS:
        value = defaults.get(flag)
        if value is None or f" --{flag}" in lowered or (flag == "model" and model):
            continue
        if flag == "stylize" and " --s " in f"{lowered} ":
            continue
        if flag == "chaos" and " --c " in f"{lowered} ":
            continue
        text += f" --{flag} {value}"
    return text


def header(job_prompt: str, kind: JobKind, mention: str) -> str:
    prompt = discord.utils.escape_mentions(discord.utils.escape_markdown(job_prompt))
    what = {
        JobKind.IMAGINE: "",
        JobKind.REROLL: " (re-roll)",
        JobKind.VARIATION: " (variations)",
        JobKind.UPSCALE: " (upscale)",
    }[kind]
    return f"**{prompt}**{what} — {mention}"


class ImagineCog(commands.Cog):
    def __init__(self, bot: KaikaBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create four images from a prompt (flags: --ar --seed --no --steps --s --c --model)")
    @app_commands.describe(
        prompt="What to draw, then flags such as --ar 16:9 --seed 7 --no text",
        model="The model to use (same as --model)",
    )
    async def imagine(self, interaction: discord.Interaction[KaikaBot], prompt: str, model: str | None = None) -> None:
        services = self.bot.services

        async def prepare() -> PendingJob:
            defaults = await services.storage.users.defaults(interaction.user.id)
            request = services.jobs.parse(with_defaults(prompt, model, defaults))
            return await services.jobs.imagine(requester(interaction), place(interaction), request)

        await start_job(self.bot, interaction, prepare)

    @imagine.autocomplete("model")
    async def model_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = self.bot.services.model_names
        return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]

    async def press(
        self, interaction: discord.Interaction[KaikaBot], action: ButtonAction, job_id: str, index: int
    ) -> None:
        async def prepare() -> PendingJob:
            return await self.bot.services.jobs.press(requester(interaction), place(interaction), action, job_id, index)

        await start_job(self.bot, interaction, prepare)


async def start_job(
    bot: KaikaBot, interaction: discord.Interaction[KaikaBot], prepare: Callable[[], Awaitable[PendingJob]]
) -> None:
    """Run the checks, acknowledge, and hand the job to a message that reports it."""
    async with Acknowledgement(interaction) as ack:
        try:
            pending = await prepare()
        except Exception as error:
            await ack.fail(error)
            return
        await ack.defer()
    reporter = JobMessage(
        interaction,
        header(pending.job.prompt, pending.job.kind, interaction.user.mention),
        interval=bot.settings.progress_edit_interval,
        storage=bot.services.storage,
    )
    pending.start(reporter)
