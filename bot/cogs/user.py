"""Commands about your own jobs: /info, /history, /show, /settings, /delete, /web, and a job's ℹ️ button."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledgement, KaikaCog
from bot.limits import MemberText, Part, fit, shorten
from bot.progress import fit_attachment, video_attachments
from bot.views import INFO_EVENT, header, message_link, result_view
from pipeline.images import decode_image, display_grid, encode_png
from service.admission import check_showable
from service.defaults import MODE, NEGATIVE, SUFFIX, format_defaults
from service.errors import JobGone, JobNotDone, UserError
from service.readback import JobParameters, parameters_for, prompt_line, settings_lines, shown_flags
from service.settings import Settings
from service.signin import new_signin_link, note_server_manager
from service.wiring import Services
from storage.records import VIDEO_KINDS, JobRecord, JobStatus

log = logging.getLogger(__name__)

# A prompt named in a list or a confirmation is shown to this many characters at most.
PROMPT_IN_LIST = 80


class UserCog(KaikaCog):
    def __init__(self, services: Services, settings: Settings) -> None:
        super().__init__(services, settings)
        # (member, guild) → whether they had Manage Server when last recorded: written only on a change.
        self._managers_seen: dict[tuple[int, int], bool] = {}

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
                await services.jobs.fast_time_line(self.requester(interaction)),
            ]
            await ack.send(fit("\n".join(lines), "\n", *defaults_parts(defaults)))

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
                seed = "" if job.seed is None else f" (seed {job.seed})"
                lines += ["\n" if lines else "", f"`{job.id}` {job.kind} {job.status}: "]
                # The prompt to PROMPT_IN_LIST characters, then all its flags.
                shown = " ".join(p for p in (shorten(job.prompt, PROMPT_IN_LIST), shown_flags(job)) if p)
                lines += [MemberText(shown), seed, where]
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
            if interaction.guild_id is not None:  # posted for the server to see: its blocklist applies
                try:
                    check_showable(job, await self.services.jobs.guild_settings(interaction.guild_id))
                except UserError as error:
                    await ack.fail(error)
                    return
            await ack.defer()
        images = [await storage.images.get(image.storage_key) for image in job.images]
        video = job.kind in VIDEO_KINDS
        if video:  # its MP4 and thumbnail, as first posted
            attachments = video_attachments(job.id, images[0], images[-1])
        else:
            data, extension = await asyncio.to_thread(_showable, images, interaction.filesize_limit)
            attachments = [discord.File(io.BytesIO(data), filename=f"kaika_{job.id}.{extension}")]
        view = result_view(job.id, len(images), self.services.jobs.offered_for(job), video=video)
        await interaction.edit_original_response(
            content=fit(*header(prompt_line(job), job.kind, f"<@{job.owner_id}>", [seeds_note(job)])),
            attachments=attachments,
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
        negative="What to leave out of every image when the prompt has no --no (none: forget it)",
        suffix="Words and flags added to every prompt, such as: oil painting --ar 3:2 (none: forget it)",
        remix="Remix: V, Vary and 🔄 open the prompt for you to edit first",
        mode="draft: every prompt runs with --draft (fastest; Enhance makes an image at full quality)",
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
        negative: str | None = None,
        suffix: str | None = None,
        remix: bool | None = None,
        mode: Literal["standard", "draft"] | None = None,
        reset: bool = False,
    ) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            given = {"ar": ar, "stylize": stylize, "chaos": chaos, "steps": steps, "model": model}
            given |= {NEGATIVE: negative, SUFFIX: suffix, "remix": remix, MODE: mode}
            given = {k: v for k, v in given.items() if v is not None}
            defaults = await self.services.jobs.save_defaults(interaction.user.id, given, reset=reset)
            verb = "Saved. " if given or reset else ""
            await ack.send(fit(verb, *defaults_parts(defaults)))

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

    @app_commands.command(
        name="web", description="A sign-in link to Kaika on the web (gallery, region editor), for you alone"
    )
    async def web(self, interaction: discord.Interaction) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            await self.note_manager(interaction)  # so the web knows at once whether they are an admin
            link = await new_signin_link(
                self.services.storage, self.config, interaction.user.id, interaction.user.display_name
            )
            # <…> keeps Discord from previewing the link; a preview would not spend it anyway.
            await ack.send(
                f"Your sign-in link to Kaika on the web; it works once, for {link.minutes} minutes, and signs in "
                f"whoever opens it, so keep it to yourself:\n<{link.url}>"
            )

    @commands.Cog.listener("on_interaction")
    async def note_manager(self, interaction: discord.Interaction) -> None:
        """Record whether a member has Manage Server here (on a change), so the web companion treats the
        members the bot's admin rule makes admins as admins too."""
        if interaction.guild_id is None:
            return
        key = (interaction.user.id, interaction.guild_id)
        manages = bool(interaction.permissions.manage_guild)
        if self._managers_seen.get(key) == manages:
            return
        try:
            await note_server_manager(
                self.services.storage, key[0], interaction.user.display_name, key[1], manages
            )
        except Exception:  # the member's own command answers them; this is only noted
            log.warning("Could not record whether member %s has Manage Server", key[0], exc_info=True)
            return
        self._managers_seen[key] = manages

    @commands.Cog.listener(f"on_{INFO_EVENT}")
    async def job_info(self, interaction: discord.Interaction, job_id: str) -> None:
        """ℹ️ on a job's message: its full parameters, to the member alone."""
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            try:
                job = await self.services.storage.jobs.get(job_id)
                if job is None:
                    raise JobGone()
                parameters = await parameters_for(self.services.storage, job)
            except Exception as error:
                await ack.fail(error)
                return
            await ack.send(fit(*parameter_parts(job, parameters)))


def parameter_parts(job: JobRecord, parameters: JobParameters) -> list[Part]:
    """What ℹ️ shows of a job: its prompt and flags, negative prompt, each image's seed, model, steps,
    guidance, size and the job it comes from."""
    parts: list[Part] = [f"**Job `{job.id}`** ({job.kind}, {job.status}) — <@{job.owner_id}>\nPrompt: "]
    parts.append(MemberText(prompt_line(job)))
    if job.negative_prompt:
        parts += ["\nNegative prompt: ", MemberText(job.negative_prompt)]
    parts.append("".join(f"\n{line}" for line in settings_lines(parameters)))
    return parts


def seeds_note(job: JobRecord) -> str:
    return "Seeds: " + ", ".join(str(image.seed) for image in job.images)


def defaults_parts(defaults: dict[str, object]) -> list[Part]:
    """The member's saved defaults; their own words (negative prompt, suffix) escaped, on lines of their own."""
    parts: list[Part] = [f"Your defaults: {format_defaults(defaults)}"]
    for key, name in ((NEGATIVE, "negative prompt"), (SUFFIX, "suffix")):
        if defaults.get(key):
            parts += [f"\nYour {name}: ", MemberText(str(defaults[key]))]
    return parts


def _showable(images: list[bytes], limit: int) -> tuple[bytes, str]:
    data = images[0] if len(images) == 1 else encode_png(display_grid([decode_image(i) for i in images]))
    return fit_attachment(data, limit)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(UserCog(bot.services, bot.settings))  # type: ignore[attr-defined]
