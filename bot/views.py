"""What a job's message shows: its header and result lines, its persistent buttons, and Remix's editor.

Buttons are `DynamicItem`s whose custom_id `kaika:<action>:<job_id>:<index>` names their job, so a
button works after a restart: the job is loaded from storage when it is pressed. A press is passed
on as the bot event `job_button` (handled by the imagine extension), which keeps this module below
the flow that starts jobs and renders them with these views. The ℹ️ and 🖌 Remix buttons
(`kaika:info:<job_id>`, `kaika:remix:<job_id>`) start no job: they become the events `job_info` and
`job_remix`. With Remix on, a press of a button that starts from a prompt (`ButtonAction.remixable`)
opens a `RemixModal` instead; its submission (`kaika:remixed:<action>:<job_id>:<index>` and the edited
text, read by `remix_submission` wherever it arrives, so an editor outlives a restart too) becomes the
event `remix_submit`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import discord

from bot.errors import reply_error
from bot.limits import BUTTON_LABEL, MODAL_TITLE, TEXT_INPUT_VALUE, MemberText, Part, fit, shorten
from service.errors import JobGone
from service.jobs import ButtonAction as Action
from storage.records import VIDEO_KINDS, JobKind, JobRecord

CUSTOM_ID = re.compile(r"kaika:(?P<action>[a-z]{1,8}):(?P<job_id>[A-Za-z0-9_-]{1,64}):(?P<index>\d{1,2})")
# The bot event a press becomes: `on_job_button(interaction, action, job_id, index)`.
PRESS_EVENT = "job_button"
# The buttons of a job's message that start no job: ℹ️ (its parameters) and 🖌 Remix (turn Remix on or off).
TOOL_ID = re.compile(r"kaika:(?P<tool>info|remix):(?P<job_id>[A-Za-z0-9_-]{1,64})")
# The bot events they become: `on_job_info(interaction, job_id)`, `on_job_remix(interaction, job_id)`.
INFO_EVENT = "job_info"
REMIX_EVENT = "job_remix"
# A Remix editor's submission: `on_remix_submit(interaction, action, job_id, index, prompt)`.
REMIX_SUBMIT_EVENT = "remix_submit"
REMIX_MODAL_ID = re.compile(
    r"kaika:remixed:(?P<action>[a-z]{1,8}):(?P<job_id>[A-Za-z0-9_-]{1,64}):(?P<index>\d{1,2})"
)
_PROMPT_INPUT = "prompt"
# Vary (Region)'s and Custom Zoom's question: `on_edit_submit(interaction, action, job_id, index, answer,
# prompt)` once submitted (see `EditModal`).
EDIT_SUBMIT_EVENT = "edit_submit"
EDIT_MODAL_ID = re.compile(
    r"kaika:asked:(?P<action>[a-z]{1,8}):(?P<job_id>[A-Za-z0-9_-]{1,64}):(?P<index>\d{1,2})"
)
_ANSWER_INPUT = "answer"


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


_TOOL_LOOKS: dict[str, dict[str, str]] = {"info": {"emoji": "ℹ️"}, "remix": {"emoji": "🖌", "label": "Remix"}}


class JobToolButton(discord.ui.DynamicItem[discord.ui.Button], template=TOOL_ID):
    """ℹ️ or 🖌 Remix on a job's message."""

    def __init__(self, tool: str, job_id: str, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                row=row,
                custom_id=f"kaika:{tool}:{job_id}",
                **_TOOL_LOOKS[tool],
            )
        )
        self.tool = tool
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobToolButton:
        return cls(match["tool"], match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch(f"job_{self.tool}", interaction, self.job_id)


class RemixModal(discord.ui.Modal):
    """Remix's editor: the job's prompt and flags, to change before the button's job starts from them.

    Its submission is read by `remix_submission` (the bot's `on_interaction`), not by this object, which
    lives only in the process that opened it.
    """

    def __init__(self, action: Action, job_id: str, index: int, prompt: str) -> None:
        super().__init__(
            title=shorten(f"Remix: {_PRESSED.get(action, 'edit the prompt')}", MODAL_TITLE),
            timeout=1.0,  # discord.py needs not keep it: see `remix_submission`
            custom_id=f"kaika:remixed:{action.value}:{job_id}:{index}",
        )
        assert REMIX_MODAL_ID.fullmatch(self.custom_id), self.custom_id
        self.add_item(
            discord.ui.TextInput(
                label="Prompt and flags",
                style=discord.TextStyle.paragraph,
                custom_id=_PROMPT_INPUT,
                default=shorten(prompt, TEXT_INPUT_VALUE),
                max_length=TEXT_INPUT_VALUE,
            )
        )


def remix_submission(interaction: discord.Interaction) -> tuple[str, str, int, str] | None:
    """(action, job id, image index, edited text) of a submitted Remix editor; None for any other interaction."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: dict = interaction.data or {}  # type: ignore[assignment]
    match = REMIX_MODAL_ID.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return None
    text = next((c.get("value", "") for c in _inputs(data) if c.get("custom_id") == _PROMPT_INPUT), "")
    return match["action"], match["job_id"], int(match["index"]), text


def _inputs(component: dict) -> list[dict]:
    """The text inputs of a submitted modal, in action rows or labels (both are how Discord sends them)."""
    found = [component] if component.get("type") == discord.ComponentType.text_input.value else []
    for child in [*component.get("components", []), component.get("component") or {}]:
        if child:
            found += _inputs(child)
    return found


# What the editor's title says the pressed button will do.
_PRESSED = {
    Action.VARY: "vary this image",
    Action.VARY_SUBTLE: "Vary (Subtle)",
    Action.VARY_STRONG: "Vary (Strong)",
    Action.REROLL: "re-roll the prompt",
    Action.ZOOM_OUT_2X: "Zoom Out 2x",
    Action.ZOOM_OUT_15X: "Zoom Out 1.5x",
    Action.MAKE_SQUARE: "Make Square",
    Action.PAN_LEFT: "pan left",
    Action.PAN_RIGHT: "pan right",
    Action.PAN_UP: "pan up",
    Action.PAN_DOWN: "pan down",
}


def grid_view(
    job_id: str, num_images: int = 4, offered: Collection[Action] = frozenset(Action)
) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 and 🔄 on the second, Enhance 1–4 on the third under a --draft grid (of
    the actions `offered`)."""
    buttons = [JobButton(Action.UPSCALE, job_id, i, label=f"U{i + 1}", row=0) for i in range(num_images)]
    buttons += [JobButton(Action.VARY, job_id, i, label=f"V{i + 1}", row=1) for i in range(num_images)]
    buttons.append(JobButton(Action.REROLL, job_id, 0, emoji="🔄", row=1))
    buttons += [
        JobButton(Action.ENHANCE, job_id, i, label=f"Enhance {i + 1}", row=2) for i in range(num_images)
    ]
    return _view(buttons, offered, job_id)


def single_view(
    job_id: str, index: int = 0, offered: Collection[Action] = frozenset(Action)
) -> discord.ui.View:
    """A single image's buttons: vary, upscale, 🔬 and 🎞 Animate, then the edits (Zoom Out, Make Square, the
    pans)."""
    buttons = [
        JobButton(Action.VARY_SUBTLE, job_id, index, label="Vary (Subtle)", row=0),
        JobButton(Action.VARY_STRONG, job_id, index, label="Vary (Strong)", row=0),
        JobButton(Action.VARY_REGION, job_id, index, label="Vary (Region)", row=0),
        JobButton(Action.UPSCALE_SUBTLE, job_id, index, label="Upscale (Subtle)", row=1),
        JobButton(Action.UPSCALE_CREATIVE, job_id, index, label="Upscale (Creative)", row=1),
        JobButton(Action.PROCESS, job_id, index, label="Process", emoji="🔬", row=1),
        JobButton(Action.ANIMATE_LOW, job_id, index, label="Animate (Low motion)", emoji="🎞", row=1),
        JobButton(Action.ANIMATE_HIGH, job_id, index, label="Animate (High motion)", emoji="🎞", row=1),
        JobButton(Action.ZOOM_OUT_2X, job_id, index, label="Zoom Out 2x", row=2),
        JobButton(Action.ZOOM_OUT_15X, job_id, index, label="Zoom Out 1.5x", row=2),
        JobButton(Action.ZOOM_CUSTOM, job_id, index, label="Custom Zoom", row=2),
        JobButton(Action.MAKE_SQUARE, job_id, index, label="Make Square", row=2),
        *(JobButton(action, job_id, index, emoji=emoji, row=3) for action, emoji in PAN_BUTTONS),
    ]
    return _view(buttons, offered, job_id)


PAN_BUTTONS = (
    (Action.PAN_LEFT, "⬅️"),
    (Action.PAN_RIGHT, "➡️"),
    (Action.PAN_UP, "⬆️"),
    (Action.PAN_DOWN, "⬇️"),
)


class EditModal(discord.ui.Modal):
    """What Vary (Region) and Custom Zoom ask before their job starts: the region or the factor, and with
    Remix on the prompt and flags too.

    As Remix's editor, its submission is read by `edit_submission` from its custom_id
    (`kaika:asked:<action>:<job_id>:<index>`), not by this object, so it outlives a restart.
    """

    def __init__(self, action: Action, job_id: str, index: int, prompt: str | None = None) -> None:
        region = action is Action.VARY_REGION
        super().__init__(
            title="Vary (Region)" if region else "Custom Zoom",
            timeout=1.0,  # discord.py needs not keep it: see `edit_submission`
            custom_id=f"kaika:asked:{action.value}:{job_id}:{index}",
        )
        assert EDIT_MODAL_ID.fullmatch(self.custom_id), self.custom_id
        self.add_item(
            discord.ui.TextInput(
                label="Region to vary" if region else "Zoom out by (1 to 2)",
                custom_id=_ANSWER_INPUT,
                default="centre" if region else "1.5",
                placeholder="left, right, top, bottom, centre, or x,y,w,h in percent"
                if region
                else "a number such as 1.5; 1 with a new --ar in the prompt",
                max_length=40,
            )
        )
        if prompt is not None:
            self.add_item(
                discord.ui.TextInput(
                    label="Prompt and flags (Remix)",
                    style=discord.TextStyle.paragraph,
                    custom_id=_PROMPT_INPUT,
                    default=shorten(prompt, TEXT_INPUT_VALUE),
                    max_length=TEXT_INPUT_VALUE,
                )
            )


def edit_submission(interaction: discord.Interaction) -> tuple[str, str, int, str, str | None] | None:
    """(action, job id, image index, the region or factor typed, the prompt or None) of a submitted
    `EditModal`; None for any other interaction."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: dict = interaction.data or {}  # type: ignore[assignment]
    match = EDIT_MODAL_ID.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return None
    values = {c.get("custom_id"): c.get("value", "") for c in _inputs(data)}
    return (
        match["action"],
        match["job_id"],
        int(match["index"]),
        values.get(_ANSWER_INPUT, ""),
        values.get(_PROMPT_INPUT),
    )


def video_view(job_id: str, offered: Collection[Action] = frozenset(Action)) -> discord.ui.View:
    """A video's buttons: Extend (a few seconds more from its last frame)."""
    return _view([JobButton(Action.EXTEND, job_id, 0, label="Extend", emoji="🎞", row=0)], offered, job_id)


def result_view(
    job_id: str, num_images: int, offered: Collection[Action] = frozenset(Action), *, video: bool = False
) -> discord.ui.View:
    """The buttons of a finished job: a video's, a single image's, or a grid's; only those its model can
    serve."""
    if video:
        return video_view(job_id, offered)
    if num_images == 1:
        return single_view(job_id, offered=offered)
    return grid_view(job_id, num_images, offered)


def _view(buttons: list[JobButton], offered: Collection[Action], job_id: str) -> discord.ui.View:
    """The `offered` buttons, then ℹ️ and 🖌 Remix on the last row."""
    view = discord.ui.View(timeout=None)
    for button in buttons:
        if button.action in offered:
            view.add_item(button)
    view.add_item(JobToolButton("info", job_id, row=TOOL_ROW))
    view.add_item(JobToolButton("remix", job_id, row=TOOL_ROW))
    return view


TOOL_ROW = 4  # Discord's last row of buttons: the rows above are the job's own


def reroll_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.REROLL, job_id, 0, emoji="🔄"))
    return view


def header(job_prompt: str, kind: JobKind, mention: str, notes: Sequence[str] = ()) -> tuple[Part, ...]:
    """The first line of a job's message: its prompt and flags (`service.readback.prompt_line`), what kind of
    job, and whose; then any notes on it.

    In parts for `bot.limits.fit`, which shortens the prompt when the whole message would be too long.
    """
    what = {
        JobKind.IMAGINE: "",
        JobKind.REROLL: " (re-roll)",
        JobKind.VARIATION: " (variations)",
        JobKind.UPSCALE: " (upscale)",
        JobKind.REMIX: " (remix)",
        JobKind.REGION: " (vary region)",
        JobKind.ZOOM: " (zoom out)",
        JobKind.PAN: " (pan)",
        JobKind.SQUARE: " (make square)",
        JobKind.PROCESS: " (diffusion process)",
        JobKind.ANIMATE: " (video)",
        JobKind.EXTEND: " (extended video)",
    }.get(kind, f" ({kind})")
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
    if job.kind in VIDEO_KINDS:
        return f"🎞 Video{seconds}"
    if single and job.parent_image_index is not None:
        return f"Image #{job.parent_image_index + 1}{seconds}"
    return f"Done{seconds}"


def message_link(job: JobRecord) -> str | None:
    if job.message_id is None or job.channel_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"
