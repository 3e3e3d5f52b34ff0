"""Errors a Discord user can cause, and the one place they become ephemeral replies."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.limits import count_acknowledgement, fit
from service.errors import OwnerOnly
from service.errors import user_message as service_message
from storage.errors import QuotaExceeded

log = logging.getLogger(__name__)


GENERIC_FAILURE = "Something went wrong on Kaika's side; the error has been logged."


def user_message(error: BaseException) -> str | None:
    """The message to show for an error the user can act on; None for a bug of ours."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QuotaExceeded) and error.resets_at is not None:
        # Discord writes a timestamp in the reader's own time zone, and counts down to it.
        at = error.resets_at
        return error.explain(f"{discord.utils.format_dt(at, 'R')} ({discord.utils.format_dt(at, 't')})")
    if isinstance(error, OwnerOnly):
        return error.explain(f"<@{error.owner_id}>")
    message = service_message(error)
    if message is not None:
        return message
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You may not use this command."
    return None


async def reply_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer an interaction with an ephemeral message describing `error`.

    Works whether or not the interaction was already acknowledged. Errors that are bugs are logged
    with their traceback and shown as a generic failure.
    """
    message = user_message(error)
    if message is None:
        log.error("Unexpected error handling %s", describe(interaction), exc_info=error)
        message = GENERIC_FAILURE
    message = fit(message)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
            count_acknowledgement(interaction)
    except discord.HTTPException:
        log.warning("Could not tell the user about an error in %s", describe(interaction), exc_info=True)


def describe(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    custom_id = (interaction.data or {}).get("custom_id")
    return f"component {custom_id}" if custom_id else f"interaction {interaction.id}"
