"""The flow that starts a job from an interaction: check, acknowledge, then report as the job runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.interactions import Acknowledgement
from bot.progress import JobMessage
from bot.views import header
from service.jobs import PendingJob
from service.readback import prompt_line
from service.wiring import Services

log = logging.getLogger(__name__)

NOT_ACKNOWLEDGED = "Discord did not take the acknowledgement of this job, so it could not be shown."


async def start_job(
    interaction: discord.Interaction,
    services: Services,
    prepare: Callable[[], Awaitable[PendingJob]],
    *,
    progress_interval: float,
) -> None:
    """Run the checks (`prepare`), acknowledge, and hand the job to a message that reports it.

    A refusal is answered ephemerally and records nothing. A job whose acknowledgement Discord
    refuses is given up at once (failed, its place freed) rather than left to run unseen.
    """
    async with Acknowledgement(interaction) as ack:
        try:
            pending = await prepare()
        except Exception as error:
            await ack.fail(error)
            return
        try:
            await ack.defer()
        except BaseException as error:
            await pending.abandon(NOT_ACKNOWLEDGED)
            if not isinstance(error, discord.HTTPException):
                raise
            log.warning(
                "Could not acknowledge interaction %s (%s); gave up job %s",
                interaction.id,
                error,
                pending.job.id,
            )
            return
    reporter = JobMessage(
        interaction,
        header(prompt_line(pending.job), pending.job.kind, interaction.user.mention, pending.notes),
        interval=progress_interval,
        storage=services.storage,
    )
    pending.start(reporter)
