"""Job buttons: persistent `DynamicItem`s whose custom_id `kaika:<action>:<job_id>:<index>` names their job.

The state lives in the custom_id, so a button works after a restart: the bot loads the job from
storage when it is pressed. Ids that match the grammar but name no job (deleted, forged, from
another database) are answered "this job no longer exists".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from bot.errors import reply_error
from bot.jobs import ButtonAction as Action
from bot.jobs import JobGone

if TYPE_CHECKING:
    from bot.app import KaikaBot

CUSTOM_ID = re.compile(r"kaika:(?P<action>[a-z]{1,8}):(?P<job_id>[A-Za-z0-9_-]{1,64}):(?P<index>\d{1,2})")


def custom_id(action: Action, job_id: str, index: int) -> str:
    value = f"kaika:{action.value}:{job_id}:{index}"
    assert CUSTOM_ID.fullmatch(value), value
    return value


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID):
    def __init__(self, action: str, job_id: str, index: int, *, label: str | None = None, emoji: str | None = None,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, row=row, custom_id=f"kaika:{action}:{job_id}:{index}")
        )
        self.action = action
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job_id"], int(match["index"]), label=item.label, style=item.style)

    async def callback(self, interaction: discord.Interaction[KaikaBot]) -> None:
        try:
            action = Action(self.action)
        except ValueError:
            await reply_error(interaction, JobGone())
            return
        from bot.cogs.imagine import ImagineCog

        cog = interaction.client.get_cog(ImagineCog.__cog_name__)
        assert isinstance(cog, ImagineCog)
        await cog.press(interaction, action, self.job_id, self.index)


def grid_view(job_id: str, num_images: int = 4) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 and 🔄 on the second."""
    view = discord.ui.View(timeout=None)
    for i in range(num_images):
        view.add_item(JobButton(Action.UPSCALE, job_id, i, label=f"U{i + 1}", row=0))
    for i in range(num_images):
        view.add_item(JobButton(Action.VARY, job_id, i, label=f"V{i + 1}", row=1))
    view.add_item(JobButton(Action.REROLL, job_id, 0, emoji="🔄", row=1))
    return view


def single_view(job_id: str, index: int = 0) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.VARY_SUBTLE, job_id, index, label="Vary (Subtle)", row=0))
    view.add_item(JobButton(Action.VARY_STRONG, job_id, index, label="Vary (Strong)", row=0))
    view.add_item(JobButton(Action.UPSCALE_SUBTLE, job_id, index, label="Upscale (Subtle)", row=1))
    view.add_item(JobButton(Action.UPSCALE_CREATIVE, job_id, index, label="Upscale (Creative)", row=1))
    return view


def reroll_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.REROLL, job_id, 0, emoji="🔄"))
    return view
