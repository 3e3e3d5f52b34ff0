"""`kaika bot` stopped with SIGTERM (docker stop): it takes no new jobs, lets a running job finish within
SHUTDOWN_GRACE, parks the job that does not finish, and exits within Docker's 10 s; the next start
resumes the parked job. The real process against the fake Discord; its health as `kaika healthcheck`
sees it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.settings import Settings
from storage import Storage
from storage.records import JobRecord, JobStatus
from testkit.bot_process import REPOSITORY, BotProcess, start_bot
from testkit.fake_discord import FakeDiscord, FakeInteraction

GRACE = 4.0  # SHUTDOWN_GRACE of the bot under test: enough for a 10-step job on a busy machine
DOCKER_STOP_TIMEOUT = 10.0  # what `docker stop` waits before SIGKILL
# Long jobs queued behind the short one, each with its own step count so that none can share a pipeline
# call with another: seconds of work after the grace even for the tiny model on an idle machine.
LONG_JOBS = 12


def healthcheck(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "healthcheck"],
        cwd=data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextlib.asynccontextmanager
async def bot_records(data_dir: Path) -> AsyncIterator[Storage]:
    """The bot's storage on `data_dir`, opened beside the bot."""
    settings = Settings(_env_file=None, data_dir=data_dir)
    storage = await Storage.open(settings.resolved_database_url, data_dir / "images")
    try:
        yield storage
    finally:
        await storage.close()


async def jobs_of(data_dir: Path, user_id: int) -> list[JobRecord]:
    """The jobs `user_id` has in the bot's records."""
    async with bot_records(data_dir) as storage:
        return await storage.jobs.recent_for_user(user_id)


async def wait_until_recorded(data_dir: Path, user_ids: list[int], seconds: float = 60.0) -> None:
    """Until each of `user_ids` has a job in the bot's records: their /imagine was taken, not only sent.
    (The records are another process's: they are looked at every 0.2 s.)"""
    async with bot_records(data_dir) as storage:
        for _ in range(round(seconds / 0.2)):
            if all([await storage.jobs.recent_for_user(user_id) for user_id in user_ids]):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"not every member's /imagine was recorded within {seconds} s")


@pytest.fixture
async def bot_process(fake_discord: FakeDiscord, tiny_model_dir: Path, tmp_path: Path):
    bots: list[BotProcess] = []

    async def start() -> BotProcess:
        bot = await start_bot(
            fake_discord, tmp_path / "data", tiny_model_dir, tmp_path, SHUTDOWN_GRACE=str(GRACE)
        )
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


def shows_progress(fake: FakeDiscord, interaction: FakeInteraction) -> bool:
    return "%" in ((fake.original(interaction) or {}).get("content") or "")


async def test_sigterm_finishes_the_running_job_parks_the_next_and_exits_in_time(
    bot_process, fake_discord: FakeDiscord, start_kaika, tmp_path: Path
):
    fake = fake_discord
    bot = await bot_process()
    await bot.wait_for_log("Connected as")  # ready: the heartbeat is being written
    await asyncio.sleep(0.5)
    assert (tmp_path / "data" / "heartbeat").exists()
    healthy = await asyncio.to_thread(healthcheck, tmp_path / "data")
    assert (healthy.returncode, healthy.stderr) == (0, "")

    ada, cy = fake.add_member("ada"), fake.add_member("cy")
    others = [fake.add_member(f"member{i}") for i in range(LONG_JOBS)]
    short = await fake.slash(ada, "imagine", prompt="a short one --steps 10")
    for number, member in enumerate(others):  # more work than the grace allows, whatever the machine's speed
        await fake.slash(member, "imagine", prompt=f"a long one --steps {100 - number}")
    await fake.wait_until(lambda: shows_progress(fake, short), 60)  # the short job runs, the rest wait
    await wait_until_recorded(
        tmp_path / "data", [member.id for member in others]
    )  # all queued before the signal

    bot.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    await bot.wait_for_log("Taking no new jobs")
    refused = await fake.wait_acked(await fake.slash(cy, "imagine", prompt="one more"))
    assert refused.ephemeral and fake.reply_text(refused) == "Kaika is restarting, try again in a minute."

    assert await bot.exit_status(15) == 0, bot.log()[-3000:]
    took = time.monotonic() - signalled
    assert took < DOCKER_STOP_TIMEOUT, f"stopped {took:.1f} s after SIGTERM"
    assert "Traceback" not in bot.log(), bot.log()[-3000:]

    # The running job finished within the grace and was posted; the jobs that did not finish are parked
    # (recorded queued or running, with their channel) for the next start; none failed or was cancelled.
    assert fake.original(short)["components"], fake.original(short)
    [finished] = await jobs_of(tmp_path / "data", ada.id)
    assert finished.status is JobStatus.DONE
    long_jobs = [job for member in others for job in await jobs_of(tmp_path / "data", member.id)]
    parked = [job for job in long_jobs if job.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    assert parked, [(job.id, job.status) for job in long_jobs]
    assert all(job.channel_id == fake.channel_id for job in parked)
    assert {job.status for job in long_jobs} <= {JobStatus.DONE, JobStatus.QUEUED, JobStatus.RUNNING}
    assert f"Parked {len(parked)} unfinished job(s)" in bot.log()
    assert await jobs_of(tmp_path / "data", cy.id) == []  # the refused request recorded nothing

    # Stopped: the heartbeat is gone, so the health check fails with its reason.
    unhealthy = await asyncio.to_thread(healthcheck, tmp_path / "data")
    assert unhealthy.returncode == 1
    assert unhealthy.stderr.startswith("kaika healthcheck: no bot is running on DATA_DIR=")

    # The next start (same DATA_DIR) resumes the parked jobs and posts their grids in the channel.
    second = await start_kaika()

    def posted_grids() -> list[dict]:  # messages of the bot's own in the channel (not interaction replies)
        return [m for m in fake.channel_messages() if m["type"] == 0 and m.get("components")]

    await fake.wait_until(lambda: len(posted_grids()) == len(parked), 120)
    assert all("a long one" in grid["content"] for grid in posted_grids())
    await second.services.jobs.wait_idle()
    for job in parked:
        assert (await second.services.storage.jobs.get(job.id)).status is JobStatus.DONE
