"""Acknowledging interactions in time, who is asking, and the base of Kaika's cogs."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import discord
from discord.ext import commands

from bot.errors import reply_error
from bot.limits import count_acknowledgement, fit
from service.admission import Place, Requester
from service.settings import Settings
from service.wiring import Services
from storage.records import FrontEnd

# Checks that run before the acknowledgement (so their errors can be ephemeral) get this long;
# after it the interaction is deferred anyway. They usually take 10-50 ms; a database busy with
# other writes can hold one up for a second.
ACK_DEADLINE_SECONDS = 0.15


class Acknowledgement:
    """Acknowledges an interaction in time, whatever the work before the first answer costs.

    For a job: the answer is an ephemeral error or a public "thinking…" defer. For a command
    whose answers are all ephemeral (`ephemeral=True`), `send` answers, and a slow one is
    deferred ephemerally at the deadline and answered by a follow-up.

    The checks before a job is queued (prompt flags, ban, blocklist, quota, queue limits) run
    before the interaction is acknowledged, because Discord makes a deferred response's first
    follow-up replace it: an error after a public defer could not be ephemeral. They take
    milliseconds; should they take longer than ACK_DEADLINE_SECONDS, the interaction is deferred
    then, and a late error replaces the "thinking…" message with an ephemeral one.
    """

    def __init__(
        self, interaction: discord.Interaction, deadline: float | None = None, *, ephemeral: bool = False
    ) -> None:
        self.interaction = interaction
        self.deadline = ACK_DEADLINE_SECONDS if deadline is None else deadline
        self.ephemeral = ephemeral
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._timer_fired = False
        self._deadline_error: discord.HTTPException | None = None

    async def __aenter__(self) -> Acknowledgement:
        self._timer = asyncio.create_task(self._defer_at_deadline())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._timer is not None
        if self._timer_fired:
            await self._timer  # never cancel a defer already on its way
        else:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    async def _defer_at_deadline(self) -> None:
        await asyncio.sleep(self.deadline)
        self._timer_fired = True
        try:
            await self.defer()
        except discord.HTTPException as error:
            # Discord refused the deadline's defer: the flow's own `defer()` raises it, where the
            # job is given up; the timer task must not raise it a second time.
            self._deadline_error = error

    async def defer(self) -> None:
        async with self._lock:
            if self._deadline_error is not None:
                raise self._deadline_error
            if not self.interaction.response.is_done():
                await self.interaction.response.defer(thinking=True, ephemeral=self.ephemeral)
                count_acknowledgement(self.interaction)

    async def send(self, content: str | None = None, **options: Any) -> None:
        """Answer with a message: the response itself, or the follow-up that replaces "thinking…".

        Content is fitted to Discord's limits (`bot.limits.fit`); what a member wrote in it should
        have been fitted as `MemberText` already.
        """
        content = None if content is None else fit(content)
        async with self._lock:
            if self.interaction.response.is_done():
                await self.interaction.followup.send(content, ephemeral=self.ephemeral, **options)
            else:
                await self.interaction.response.send_message(content, ephemeral=self.ephemeral, **options)
                count_acknowledgement(self.interaction)

    async def fail(self, error: BaseException) -> None:
        async with self._lock:
            if self._timer_fired and not self.ephemeral:
                # The public "thinking…" message goes; the error comes as a message of its own.
                with contextlib.suppress(discord.HTTPException):
                    await self.interaction.delete_original_response()
            await reply_error(self.interaction, error)


def place(interaction: discord.Interaction) -> Place:
    return Place(interaction.guild_id, interaction.channel_id, FrontEnd.DISCORD)


class KaikaCog(commands.Cog):
    """A cog of Kaika's: it works on the service layer and the settings, never on the bot object."""

    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.config = settings  # not `settings`: /settings is a command of UserCog

    def is_admin(self, interaction: discord.Interaction) -> bool:
        """A user in ADMIN_USER_IDS, or a member with Manage Server in the guild of the interaction."""
        if interaction.user.id in self.config.admin_user_ids:
            return True
        return interaction.guild_id is not None and interaction.permissions.manage_guild

    def requester(self, interaction: discord.Interaction) -> Requester:
        roles = frozenset(role.id for role in getattr(interaction.user, "roles", ()))  # none in a DM
        return Requester(
            interaction.user.id, interaction.user.display_name, self.is_admin(interaction), roles
        )
