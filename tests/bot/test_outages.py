"""The bot through database outages: a grid a member has seen stays, a job running through an outage ends
in its grid once (before or after a restart), and commands say storage is unavailable, ephemerally."""

from __future__ import annotations

import asyncio

import pytest

from bot.progress import JobMessage
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, grid_of
from tests.fixtures.storage import DiskFull

UNAVAILABLE = "Kaika's storage is unavailable right now; try again in a minute."


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.jobs.RECORD_RETRY_SECONDS", (0.05, 0.2))


async def images_made(kaika) -> None:
    """Wait until the executor has no job left: the images are made, whatever storage does with them."""
    async with asyncio.timeout(120):
        while kaika.services.executor.queue_depth():  # noqa: ASYNC110 - no event tells it
            await asyncio.sleep(0.05)


def failures(fake) -> list[str]:
    return [m["content"] for m in fake.messages.values() if "❌" in (m.get("content") or "")]


async def test_a_posted_grid_stays_when_the_database_fails_right_after(start_kaika, monkeypatch):
    kaika = await start_kaika()
    disk_full = DiskFull(kaika.services.storage.engine)
    final_edit = JobMessage._final_edit

    async def edit_then_fill_the_disk(self, *args, **kwargs):
        message = await final_edit(self, *args, **kwargs)
        disk_full.cut()  # the grid is out; linking it to its job now fails
        return message

    monkeypatch.setattr(JobMessage, "_final_edit", edit_then_fill_the_disk)
    ada = kaika.fake.add_member("ada")
    interaction = await kaika.imagine(ada, f"a lighthouse --steps {FAST_STEPS}")
    message = await kaika.finished(interaction)
    await asyncio.sleep(0.3)  # anything that would still edit the message has had its chance
    disk_full.restore()

    message = kaika.fake.original(interaction)
    assert kaika.fake.labels(int(message["id"])) == GRID_LABELS and "❌" not in message["content"]
    assert failures(kaika.fake) == []
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "done" and len(job.images) == 4


@pytest.mark.postgres
async def test_commands_during_a_postgresql_outage_say_storage_is_unavailable(start_kaika, postgres_outage):
    url, proxy = postgres_outage
    kaika = await start_kaika(database_url=url)
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    proxy.cut()
    for interaction in [
        await kaika.imagine(ada, f"a lighthouse --steps {FAST_STEPS}"),
        await fake.press(ada, grid_id, "🔄"),
        await fake.press(ada, grid_id, "U1"),
        await fake.slash(ada, "info"),
        await fake.slash(ada, "history"),
    ]:
        await fake.wait_until(lambda i=interaction: fake.reply_text(i), 10)
        assert fake.reply_text(interaction) == UNAVAILABLE
        replies = [
            fake.messages[i] for i in [interaction.original_message_id, *interaction.followup_ids] if i
        ]
        assert all(m["flags"] & 64 for m in replies)  # ephemeral: only the member sees it
    proxy.restore()
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 1  # the grid's job alone
    message = await kaika.finished(await kaika.imagine(ada, f"a lighthouse --steps {FAST_STEPS}"))
    assert fake.labels(int(message["id"])) == GRID_LABELS


@pytest.mark.postgres
async def test_a_job_running_through_a_postgresql_outage_ends_in_its_grid_once(start_kaika, postgres_outage):
    url, proxy = postgres_outage
    kaika = await start_kaika(database_url=url)
    fake = kaika.fake
    ada = fake.add_member("ada")
    interaction = await kaika.started(ada, "a long job --steps 40")
    proxy.cut()
    await images_made(kaika)
    await asyncio.sleep(1.0)  # the result waits for the database, several tries
    assert "❌" not in fake.original(interaction)["content"] and not fake.original(interaction)["components"]

    proxy.restore()
    message = await kaika.finished(interaction)
    assert fake.labels(int(message["id"])) == GRID_LABELS and failures(fake) == []
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "done" and job.message_id == int(message["id"])


@pytest.mark.postgres
async def test_a_job_cut_off_by_an_outage_and_a_restart_is_never_called_failed_and_posts_once(
    start_kaika, postgres_outage
):
    url, proxy = postgres_outage
    first = await start_kaika(database_url=url)
    fake = first.fake
    ada = fake.add_member("ada")
    interaction = await first.started(ada, "a long job --steps 40")
    proxy.cut()
    await images_made(first)
    await first.close()  # the bot restarts while the database is still away
    proxy.restore()

    second = await start_kaika(database_url=url)
    posted = await fake.wait_until(
        lambda: [m for m in fake.channel_messages() if m["type"] == 0 and m["components"]], 120
    )
    await second.services.jobs.wait_idle()
    assert failures(fake) == [] and "❌" not in fake.original(interaction)["content"]
    [message] = posted  # the result, once, in the job's channel
    assert fake.labels(int(message["id"])) == GRID_LABELS
    [job] = await second.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "done" and job.message_id == int(message["id"])


REFUSALS = ("The queue is full (8 jobs)", "You already have 2 jobs")


@pytest.mark.slow
async def test_a_burst_over_the_limits_is_refused_ephemerally_and_stats_show_no_failures(start_kaika):
    kaika = await start_kaika(max_queue=8, max_jobs_per_user=2)
    fake = kaika.fake
    members = [fake.add_member(f"member{n}") for n in range(12)]
    interactions = await asyncio.gather(
        *(kaika.imagine(members[n % 12], f"picture {n} --steps {FAST_STEPS}") for n in range(36))
    )

    def refusal(interaction) -> str | None:
        """The ephemeral refusal the member got (at once, or after a deferral on a busy machine)."""
        ids = [interaction.original_message_id, *interaction.followup_ids] if interaction.acked_at else []
        for message in (fake.messages.get(i) for i in ids if i):
            if message and message["flags"] & 64 and any(r in message["content"] for r in REFUSALS):
                return message["content"]
        return None

    def grid(interaction) -> bool:
        message = fake.original(interaction)
        return bool(message and message.get("components"))

    await fake.wait_until(lambda: all(refusal(i) or grid(i) for i in interactions), 300)
    await kaika.services.jobs.wait_idle()
    refused = [i for i in interactions if refusal(i)]
    accepted = [i for i in interactions if grid(i)]
    assert refused and len(accepted) >= 8 and len(refused) + len(accepted) == 36
    assert all(fake.labels(int(fake.original(i)["id"])) == GRID_LABELS for i in accepted)
    assert failures(fake) == []

    stats = await fake.slash(fake.guild_owner, "stats", window="24h")
    text = await fake.wait_until(lambda: fake.reply_text(stats))
    assert f"0% (0 failed, {len(accepted)} done)" in text
