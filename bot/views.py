"""What a job's message shows: its header and result lines, and its persistent buttons.

Buttons are `DynamicItem`s whose custom_id `kaika:<action>:<job_id>:<index>` names their job, so a
button works after a restart: the job is loaded from storage when it is pressed. A press is passed
on as the bot event `job_button` (handled by the imagine extension), which keeps this module below
the flow that starts jobs and renders them with these views.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import discord

from bot.errors import reply_error
from bot.limits import BUTTON_LABEL, MemberText, Part, fit, shorten
from service.errors import JobGone
from service.jobs import ButtonAction as Action
from storage.records import JobKind, JobRecord

CUSTOM_ID = re.compile(r"kaika:(?P<action>[a-z]{1,8}):(?P<job_id>[A-Za-z0-9_-]{1,64}):(?P<index>\d{1,2})")
# The bot event a press becomes: `on_job_button(interaction, action, job_id, index)`.
PRESS_EVENT = "job_button"


def custom_id(action: Action | str, job_id: str, index: int) -> str:
    value = f"kaika:{Action(action).value if isinstance(action, Action) else action}:{job_id}:{index}"
    assert CUSTOM_ID.fullmatch(value), value
    return value


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID):
    def __init__(
        self,
        action: str,
        job_id: str,
        index: int,
        *,
        label: str | None = None,
        emoji: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=None if label is None else shorten(label, BUTTON_LABEL),
                emoji=emoji,
                style=style,
                row=row,
                custom_id=custom_id(action, job_id, index),
            )
        )
        self.action = action
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job_id"], int(match["index"]), label=item.label, style=item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            action = Action(self.action)
        except ValueError:  # the grammar's shape with an action Kaika never made
            await reply_error(interaction, JobGone())
            return
        interaction.client.dispatch(PRESS_EVENT, interaction, action, self.job_id, self.index)


def grid_view(
    job_id: str, num_images: int = 4, offered: Collection[Action] = frozenset(Action)
) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 and 🔄 on the second (of the actions `offered`)."""
    buttons = [JobButton(Action.UPSCALE, job_id, i, label=f"U{i + 1}", row=0) for i in range(num_images)]
    buttons += [JobButton(Action.VARY, job_id, i, label=f"V{i + 1}", row=1) for i in range(num_images)]
    buttons.append(JobButton(Action.REROLL, job_id, 0, emoji="🔄", row=1))
    return _view(buttons, offered)


def single_view(
    job_id: str, index: int = 0, offered: Collection[Action] = frozenset(Action)
) -> discord.ui.View:
    buttons = [
        JobButton(Action.VARY_SUBTLE, job_id, index, label="Vary (Subtle)", row=0),
        JobButton(Action.VARY_STRONG, job_id, index, label="Vary (Strong)", row=0),
        JobButton(Action.UPSCALE_SUBTLE, job_id, index, label="Upscale (Subtle)", row=1),
        JobButton(Action.UPSCALE_CREATIVE, job_id, index, label="Upscale (Creative)", row=1),
    ]
    return _view(buttons, offered)


def result_view(
    job_id: str, num_images: int, offered: Collection[Action] = frozenset(Action)
) -> discord.ui.View:
    """The buttons of a finished job: a single image's, or a grid's; only those its model can serve."""
    if num_images == 1:
        return single_view(job_id, offered=offered)
    return grid_view(job_id, num_images, offered)


def _view(buttons: list[JobButton], offered: Collection[Action]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for button in buttons:
        if button.action in offered:
            view.add_item(button)
    return view


def reroll_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.REROLL, job_id, 0, emoji="🔄"))
    return view


def header(job_prompt: str, kind: JobKind, mention: str, notes: Sequence[str] = ()) -> tuple[Part, ...]:
    """The first line of a job's message: its prompt, what kind of job, and whose; then any notes on it.

    In parts for `bot.limits.fit`, which shortens the prompt when the whole message would be too long.
    """
    what = {
        JobKind.IMAGINE: "",
        JobKind.REROLL: " (re-roll)",
        JobKind.VARIATION: " (variations)",
        JobKind.UPSCALE: " (upscale)",
    }[kind]
    return ("**", MemberText(job_prompt), f"**{what} — {mention}", *(f"\n-# {note}" for note in notes))


def interrupted_notice(job: JobRecord) -> str:
    """What a job's channel is told when a restart could not resume the job."""
    return fit(
        f"<@{job.requester_id}> Kaika restarted and could not resume your job **",
        MemberText(job.prompt),
        "**. Press 🔄 to run the prompt again.",
    )


def result_line(job: JobRecord, single: bool) -> str:
    seconds = f" in {job.compute_seconds:.1f} s" if job.compute_seconds else ""
    if single and job.parent_image_index is not None:
        return f"Image #{job.parent_image_index + 1}{seconds}"
    return f"Done{seconds}"


def message_link(job: JobRecord) -> str | None:
    if job.message_id is None or job.channel_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"
