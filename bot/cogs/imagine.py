"""/imagine and the job buttons (with Remix's editor): check, acknowledge, record, then report as the job runs."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import reply_error
from bot.flow import start_job
from bot.interactions import Acknowledgement, KaikaCog, place
from bot.limits import MemberText, Part, count_acknowledgement, fit, fit_choices
from bot.views import (
    EDIT_SUBMIT_EVENT,
    PRESS_EVENT,
    REMIX_EVENT,
    REMIX_SUBMIT_EVENT,
    EditModal,
    JobButton,
    JobToolButton,
    RemixModal,
)
from pipeline.uploads import DISCORD_MEDIA_HOSTS, CleanUpload, UploadRefused, check_link, leading_links
from service.errors import JobGone
from service.jobs import EDIT_ASKS, ButtonAction, JobService, PendingJob, asked_edit, check_blend
from service.signin import REGION_EDITOR_PATH, new_signin_link
from storage.records import JobRecord


def _ephemeral(interaction: discord.Interaction) -> bool:
    """Whether the pressed button is on an ephemeral message (Vary (Region)'s own offer of the editor)."""
    message = interaction.message
    return message is not None and message.flags.ephemeral


REMIX_ON = (
    "Remix is on: V1–V4, Vary and 🔄 now open the prompt and its flags for you to edit before the new job "
    "starts from the same image. Press 🖌 Remix again (or `/settings remix:False`) to turn it off."
)
REMIX_OFF = "Remix is off: the buttons start their jobs from the prompt as it is."


class ImagineCog(KaikaCog):
    @app_commands.command(
        name="imagine",
        description="Four images from a prompt (flags: --ar --seed --no --steps --s --c --q --tile --repeat --model)",
    )
    @app_commands.describe(
        prompt="What to draw, then flags such as --ar 16:9 --seed 7 --no text",
        model="The model to use (same as --model)",
        image="A picture to start from (PNG, JPEG, WebP or GIF); --iw 0–2 sets how closely to follow it",
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        model: str | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        jobs = self.services.jobs

        async def prepare() -> list[PendingJob]:
            links, text = leading_links(prompt)  # Midjourney's image prompt as a link: `https://… a fox`
            if len(links) + (image is not None) > 1:
                raise UploadRefused("/imagine takes one image prompt: attach a picture or link one, once.")
            requests = await jobs.parse_all_for(interaction.user.id, text, model)
            if image is not None:
                picture = await read_upload(jobs, image)
            elif links:
                picture = await read_link(jobs, links[0], self.media_hosts)
            else:
                picture = None
            return await jobs.imagine_all(
                self.requester(interaction), place(interaction), requests, image=picture
            )

        await start_job(
            interaction, self.services, prepare, progress_interval=self.config.progress_edit_interval
        )

    @app_commands.command(
        name="blend", description="Four images mixing 2–5 pictures, steered by an optional prompt"
    )
    @app_commands.describe(
        image1="A picture to mix (PNG, JPEG, WebP or GIF)",
        image2="Another picture to mix",
        image3="A third picture (optional)",
        image4="A fourth picture (optional)",
        image5="A fifth picture (optional)",
        prompt="Words and flags to steer the mix, such as --ar 3:2 --seed 7 (optional)",
    )
    async def blend(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        prompt: str = "",
    ) -> None:
        jobs = self.services.jobs
        attached = [image for image in (image1, image2, image3, image4, image5) if image is not None]

        async def prepare() -> PendingJob:
            check_blend(len(attached), prompt)  # before anything is downloaded
            pictures = [await read_upload(jobs, image) for image in attached]
            return await jobs.blend(self.requester(interaction), place(interaction), pictures, prompt)

        await start_job(
            interaction, self.services, prepare, progress_interval=self.config.progress_edit_interval
        )

    @app_commands.command(
        name="describe", description="Four prompts that could have made a picture; press one to /imagine it"
    )
    @app_commands.describe(image="The picture to describe (PNG, JPEG, WebP or GIF)")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        async with Acknowledgement(interaction) as ack:
            try:
                picture = await read_upload(self.services.jobs, image)
                job = await self.services.describing.describe(
                    self.requester(interaction), place(interaction), picture
                )
            except Exception as error:
                await ack.fail(error)
                return
            await ack.send(
                described_text(job, interaction.user.mention),
                file=discord.File(io.BytesIO(picture.png), filename="described.png"),
                view=described_view(job),
            )

    @property
    def media_hosts(self) -> frozenset[str]:
        """Where an image link may point: Discord's attachment hosts, and the host of DISCORD_API_BASE."""
        return DISCORD_MEDIA_HOSTS | {urlsplit(self.config.discord_api_base).hostname or ""}

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
        """A job button was pressed (see `bot.views.JobButton`); with Remix on, its editor opens first, and
        Vary (Region) and Custom Zoom ask their question first (`bot.views.EditModal`)."""
        if action in EDIT_ASKS:
            await self._ask(interaction, action, job_id, index)
            return
        try:
            text = await self.services.jobs.remix_prompt(
                self.requester(interaction), place(interaction), action, job_id, index
            )
        except Exception as error:
            await reply_error(interaction, error)
            return
        if text is not None:
            await interaction.response.send_modal(RemixModal(action, job_id, index, text))
            count_acknowledgement(interaction)
            return
        await self._start_press(interaction, action, job_id, index)

    @commands.Cog.listener(f"on_{REMIX_SUBMIT_EVENT}")
    async def remix_submit(
        self, interaction: discord.Interaction, action: str, job_id: str, index: int, prompt: str
    ) -> None:
        """A Remix editor was submitted (see `bot.views.remix_submission`): the job starts from the edited prompt."""
        try:
            pressed = ButtonAction(action)
        except ValueError:  # the grammar's shape with an action Kaika never made
            await reply_error(interaction, JobGone())
            return
        await self._start_press(interaction, pressed, job_id, index, prompt)

    async def _ask(
        self, interaction: discord.Interaction, action: ButtonAction, job_id: str, index: int
    ) -> None:
        """Open the question of Vary (Region) or Custom Zoom (with the prompt too when Remix is on), once the
        press itself is allowed."""
        jobs, requester = self.services.jobs, self.requester(interaction)
        try:
            await jobs.check_press(requester, place(interaction), action, job_id, index)
            prompt = await jobs.remix_prompt(requester, place(interaction), action, job_id, index)
        except Exception as error:
            await reply_error(interaction, error)
            return
        if action is ButtonAction.VARY_REGION and self.config.web_base_url and not _ephemeral(interaction):
            await self._offer_editor(interaction, job_id, index)
            return
        await interaction.response.send_modal(EditModal(action, job_id, index, prompt))
        count_acknowledgement(interaction)

    async def _offer_editor(self, interaction: discord.Interaction, job_id: str, index: int) -> None:
        """Vary (Region) where the web companion runs (WEB_BASE_URL): a link, for this member alone, that signs
        them in to its region editor over the image, and a button that asks for the region in words as before
        (pressed on this ephemeral message, it opens the question)."""
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            try:
                link = await new_signin_link(
                    self.services.storage,
                    self.config,
                    interaction.user.id,
                    interaction.user.display_name,
                    then=REGION_EDITOR_PATH.format(job_id=job_id, index=index),
                )
            except Exception as error:
                await ack.fail(error)
                return
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Open the region editor", url=link.url))
            view.add_item(JobButton(ButtonAction.VARY_REGION, job_id, index, label="Type the region instead"))
            await ack.send(
                f"Paint, box or outline the part to vary in Kaika's region editor. Its link signs you in once, "
                f"for {link.minutes} minutes: keep it to yourself.",
                view=view,
            )

    @commands.Cog.listener(f"on_{EDIT_SUBMIT_EVENT}")
    async def edit_submit(
        self,
        interaction: discord.Interaction,
        action: str,
        job_id: str,
        index: int,
        answer: str,
        prompt: str | None,
    ) -> None:
        """Vary (Region) or Custom Zoom was answered (see `bot.views.edit_submission`): its job starts."""
        try:
            pressed = ButtonAction(action)
        except ValueError:
            pressed = None
        if pressed not in EDIT_ASKS:  # the grammar's shape with an action that asks nothing
            await reply_error(interaction, JobGone())
            return
        await self._start_press(interaction, pressed, job_id, index, prompt, answer=answer)

    async def _start_press(
        self,
        interaction: discord.Interaction,
        action: ButtonAction,
        job_id: str,
        index: int,
        prompt: str | None = None,
        *,
        answer: str | None = None,
    ) -> None:
        async def prepare() -> PendingJob:
            edit = None if answer is None else asked_edit(action, answer)
            return await self.services.jobs.press(
                self.requester(interaction),
                place(interaction),
                action,
                job_id,
                index,
                prompt=prompt,
                edit=edit,
            )

        await start_job(
            interaction, self.services, prepare, progress_interval=self.config.progress_edit_interval
        )

    @commands.Cog.listener(f"on_{REMIX_EVENT}")
    async def toggle_remix(self, interaction: discord.Interaction, job_id: str) -> None:
        """🖌 Remix was pressed: the member's Remix goes on or off (as `/settings remix`)."""
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            try:
                on = await self.services.jobs.toggle_remix(interaction.user.id)
            except Exception as error:
                await ack.fail(error)
                return
            await ack.send(REMIX_ON if on else REMIX_OFF)


NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")


def described_text(job: JobRecord, mention: str) -> str:
    """A /describe's message: whose it is, then its prompts, numbered as their buttons are."""
    parts: list[Part] = [f"**Described** — {mention}"]
    for number, prompt in zip(NUMBERS, job.params["prompts"], strict=False):
        parts += [f"\n{number} ", MemberText(prompt)]
    return fit(*parts)


def described_view(job: JobRecord) -> discord.ui.View:
    """A button per prompt, each running /imagine with it; their custom_ids name the job, so they work after
    a restart."""
    view = discord.ui.View(timeout=None)
    for index, _ in enumerate(job.params["prompts"]):
        view.add_item(JobButton(ButtonAction.DESCRIBED, job.id, index, label=str(index + 1)))
    return view


async def read_upload(jobs: JobService, attachment: discord.Attachment) -> CleanUpload:
    """A member's attachment, refused by its stated size before it is downloaded, then checked as every
    upload is (`JobService.check_upload`); an `UploadRefused` says why in one line."""
    name = discord.utils.escape_markdown(attachment.filename)
    jobs.check_upload_size(attachment.size, name)
    try:
        data = await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError) as error:
        raise UploadRefused(
            f"{name} could not be downloaded from Discord ({error}); attach it again."
        ) from None
    return await jobs.check_upload(data, name)


async def read_link(jobs: JobService, link: str, hosts: frozenset[str]) -> CleanUpload:
    """The picture a Discord attachment link names, downloaded at most MAX_UPLOAD_MB (no redirects, so a link
    cannot lead anywhere but Discord), then checked as every upload is."""
    check_link(link, hosts)
    name = discord.utils.escape_markdown(urlsplit(link).path.rsplit("/", 1)[-1] or "The linked picture")
    data = bytearray()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(link, allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise UploadRefused(
                    f"{name} could not be downloaded (HTTP {response.status}); attach it instead."
                )
            jobs.check_upload_size(response.content_length or 0, name)
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                jobs.check_upload_size(len(data), name)  # a server may not say, or say less
    except (aiohttp.ClientError, TimeoutError) as error:
        raise UploadRefused(
            f"{name} could not be downloaded ({error or 'timed out'}); attach it instead."
        ) from None
    return await jobs.check_upload(bytes(data), name)


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(JobButton, JobToolButton)
    await bot.add_cog(ImagineCog(bot.services, bot.settings))  # type: ignore[attr-defined]
