"""The flow that starts a job from an interaction: check, acknowledge, then report as the job runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.interactions import Acknowledgement
from bot.limits import Part, fit
from bot.progress import QUEUED_TEXT, FollowupJobMessage, JobMessage
from bot.views import header
from service.jobs import PendingJob
from service.readback import prompt_line
from service.wiring import Services

log = logging.getLogger(__name__)

NOT_ACKNOWLEDGED = "Discord did not take the acknowledgement of this job, so it could not be shown."


async def start_job(
    interaction: discord.Interaction,
    services: Services,
    prepare: Callable[[], Awaitable[PendingJob | list[PendingJob]]],
    *,
    progress_interval: float,
) -> None:
    """Run the checks (`prepare`), acknowledge, and hand each job to a message that reports it: the
    interaction's response for the first, a follow-up message for each other job of the same prompt
    (--repeat, {a, b} permutations; `start_several`).

    A refusal is answered ephemerally and records nothing. A job whose acknowledgement Discord
    refuses is given up at once (failed, its place freed) rather than left to run unseen.
    """
    async with Acknowledgement(interaction) as ack:
        try:
            prepared = await prepare()
        except Exception as error:
            await ack.fail(error)
            return
        jobs = prepared if isinstance(prepared, list) else [prepared]
        try:
            await ack.defer()
        except BaseException as error:
            for pending in jobs:
                await pending.abandon(NOT_ACKNOWLEDGED)
            if not isinstance(error, discord.HTTPException):
                raise
            log.warning(
                "Could not acknowledge interaction %s (%s); gave up job %s",
                interaction.id,
                error,
                ", ".join(pending.job.id for pending in jobs),
            )
            return
    if len(jobs) > 1:
        await start_several(interaction, services, jobs, progress_interval)
        return
    pending = jobs[0]
    reporter = JobMessage(
        interaction,
        _header(interaction, pending),
        interval=progress_interval,
        storage=services.storage,
        job_id=pending.job.id,
    )
    pending.start(reporter)


def _header(interaction: discord.Interaction, pending: PendingJob) -> tuple[Part, ...]:
    return header(prompt_line(pending.job), pending.job.kind, interaction.user.mention, pending.notes)


async def start_several(
    interaction: discord.Interaction, services: Services, jobs: list[PendingJob], progress_interval: float
) -> None:
    """One message per job of an acknowledged interaction, in the prompt's order: the response first (a
    deferred response's first follow-up would replace it), then a follow-up each. Should Discord refuse
    one, that job and the ones after it are given up (failed, their places freed); the jobs shown run."""
    headers = [_header(interaction, pending) for pending in jobs]
    reporters: list[JobMessage] = []
    try:
        await interaction.edit_original_response(content=fit(*headers[0], "\n", QUEUED_TEXT))
        reporters.append(
            JobMessage(
                interaction,
                headers[0],
                interval=progress_interval,
                storage=services.storage,
                job_id=jobs[0].job.id,
            )
        )
        for pending, part in zip(jobs[1:], headers[1:], strict=True):
            message = await interaction.followup.send(fit(*part, "\n", QUEUED_TEXT), wait=True)
            reporters.append(
                FollowupJobMessage(
                    interaction,
                    message,
                    part,
                    interval=progress_interval,
                    storage=services.storage,
                    job_id=pending.job.id,
                )
            )
    except discord.HTTPException as error:
        log.warning(
            "Could not post every job of interaction %s (%s); gave up the rest", interaction.id, error
        )
    for pending, reporter in zip(jobs, reporters, strict=False):
        pending.start(reporter)
    for pending in jobs[len(reporters) :]:
        await pending.abandon(NOT_ACKNOWLEDGED)
