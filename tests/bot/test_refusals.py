"""Every way /imagine can be refused: an ephemeral message saying what is wrong, and nothing queued."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.records import JobStatus
from tests.fixtures.discord_helpers import FAST_STEPS


async def refused(kaika, user, prompt, **options):
    interaction = await kaika.fake.wait_acked(await kaika.imagine(user, prompt, **options))
    assert interaction.response_type == 4 and interaction.ephemeral, interaction.response
    return kaika.fake.reply_text(interaction)


async def accepted(kaika, user, prompt):
    """The job was queued: a public "thinking…" defer and a record (the run itself is tested elsewhere)."""
    interaction = await kaika.fake.wait_acked(await kaika.imagine(user, prompt))
    assert interaction.response_type == 5 and not interaction.ephemeral, kaika.fake.reply_text(interaction)
    return interaction


async def assert_nothing_recorded(kaika, user):
    assert await kaika.services.storage.jobs.recent_for_user(user.id) == []
    assert kaika.services.executor.queue_depth() == 0


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat --zoom 2", "Unknown flag --zoom"),
        ("a cat --ar wide", "--ar needs W:H"),
        ("a cat --ar 10:1", "between 1:4 and 4:1"),
        ("a cat --steps 500", "--steps must be between 1 and 100"),
        ("a cat --seed", "--seed needs a value"),
        ("a cat --chaos 101", "--chaos must be between 0 and 100"),
        ("a cat --model nope", "--model 'nope' is not available"),
        ("   ", "The prompt is empty"),
        (
            "\u200b\u200c\u200d \u2060\ufeff\u3000 --steps 3",
            "The prompt is empty: describe the image you want.",
        ),
        ("a cat --s 5000", "--s must be between 0 and 1000"),
        ("x" * 1001, "the limit is 1000"),
    ],
)
async def test_bad_flags_are_refused_with_the_rule(start_kaika, prompt, expected):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    assert expected in await refused(kaika, ada, prompt)
    await assert_nothing_recorded(kaika, ada)


async def test_an_unknown_model_is_refused_naming_the_models_there_are(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    reply = await refused(kaika, ada, "a cat --model nosuch")
    assert "--model 'nosuch' is not available; choose one of: tiny-sd." in reply
    await assert_nothing_recorded(kaika, ada)


async def test_banned_user_is_refused_until_unbanned(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    ban = await fake.subcommand(fake.guild_owner, "admin ban", user=str(ada.id))
    await fake.wait_until(lambda: fake.original(ban))
    assert "banned" in fake.reply_text(ban)

    assert "You are banned" in await refused(kaika, ada, f"a cat --steps {FAST_STEPS}")
    await assert_nothing_recorded(kaika, ada)

    unban = await fake.subcommand(fake.guild_owner, "admin unban", user=str(ada.id))
    await fake.wait_until(lambda: fake.original(unban))
    await accepted(kaika, ada, f"a cat --steps {FAST_STEPS}")


async def test_blocked_terms_are_refused(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    add = await fake.subcommand(fake.guild_owner, "admin blocklist add", term="Gore")
    await fake.wait_until(lambda: fake.original(add))
    assert "gore" in fake.reply_text(add)

    assert "blocked term 'gore'" in await refused(kaika, ada, "a scene full of GORE --steps 2")
    assert "blocked term 'gore'" in await refused(kaika, ada, "a calm lake --no gore")
    await assert_nothing_recorded(kaika, ada)
    # Whole words only: "gorgeous" and "goreng" are fine.
    goreng = await kaika.finished(await kaika.imagine(ada, f"nasi goreng --steps {FAST_STEPS}"))
    # A term blocked later is refused on the buttons of earlier jobs too.
    add = await fake.subcommand(fake.guild_owner, "admin blocklist add", term="nasi goreng")
    await fake.wait_until(lambda: fake.original(add))
    pressed = await fake.wait_acked(await fake.press(ada, int(goreng["id"]), "🔄"))
    assert pressed.ephemeral and "blocked term 'nasi goreng'" in fake.reply_text(pressed)


async def test_daily_quota_refuses_the_job_over_it_but_not_admins(start_kaika):
    kaika = await start_kaika(admin_user_ids=[])
    fake = kaika.fake
    ada = fake.add_member("ada")
    setting = await fake.subcommand(fake.guild_owner, "admin quota", jobs=1)
    await fake.wait_until(lambda: fake.original(setting))
    assert "Daily quota: 1 job per member per 24 hours." in fake.reply_text(setting)

    await accepted(kaika, ada, f"one --steps {FAST_STEPS}")
    text = await refused(kaika, ada, f"two --steps {FAST_STEPS}")
    [first] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    opens = int((first.queued_at + timedelta(hours=24)).timestamp())
    # A Discord timestamp: each reader sees it in their own time zone, and how long until then.
    assert text == (
        f"You have used your 1 job for the last 24 hours. Your next slot opens <t:{opens}:R> (<t:{opens}:t>)."
    )
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 1
    # The guild owner has Manage Server, so is an admin: no quota.
    for prompt in ("a", "b"):
        await accepted(kaika, fake.guild_owner, f"{prompt} --steps {FAST_STEPS}")


async def test_jobs_in_flight_limit_refuses_a_second_job(start_kaika):
    kaika = await start_kaika(max_jobs_per_user=1)
    ada = kaika.fake.add_member("ada")
    await accepted(kaika, ada, "slow --steps 60")
    assert "You already have 1 job queued or running" in await refused(
        kaika, ada, f"fast --steps {FAST_STEPS}"
    )
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 1


async def test_full_queue_refuses_everyone(start_kaika):
    kaika = await start_kaika(max_queue=1)
    ada, bo = kaika.fake.add_member("ada"), kaika.fake.add_member("bo")
    await accepted(kaika, ada, "slow --steps 60")
    assert "The queue is full (1 job)" in await refused(kaika, bo, f"fast --steps {FAST_STEPS}")
    await assert_nothing_recorded_for(kaika, bo)


async def assert_nothing_recorded_for(kaika, user):
    assert await kaika.services.storage.jobs.recent_for_user(user.id) == []


async def test_a_refusal_found_after_the_deadline_replaces_the_thinking_message(start_kaika, monkeypatch):
    # Checks slower than the deadline (a busy database): the bot defers first, then answers.
    monkeypatch.setattr("bot.interactions.ACK_DEADLINE_SECONDS", 0.0)
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    interaction = await kaika.fake.wait_acked(await kaika.imagine(ada, "a cat --zoom 2"))
    assert interaction.response_type == 5
    await kaika.fake.wait_until(lambda: interaction.followup_ids)
    assert interaction.original_message_id not in kaika.fake.messages  # the "thinking…" message is gone
    [followup] = [kaika.fake.messages[i] for i in interaction.followup_ids]
    assert followup["flags"] & 64 and "Unknown flag --zoom" in followup["content"]
    await assert_nothing_recorded(kaika, ada)


@pytest.mark.parametrize("refused_defer", ["the flow's", "the deadline's"])
async def test_a_job_whose_acknowledgement_discord_refuses_is_given_up_and_frees_its_place(
    start_kaika, monkeypatch, refused_defer
):
    kaika = await start_kaika(max_jobs_per_user=1)
    ada = kaika.fake.add_member("ada")
    if refused_defer == "the deadline's":  # checks slower than the deadline: the timer defers first
        monkeypatch.setattr("bot.interactions.ACK_DEADLINE_SECONDS", 0.0)
    # Every interaction callback now arrives "too late": Discord answers 404 Unknown interaction.
    monkeypatch.setattr("testkit.fake_discord.INTERACTION_WINDOW_SECONDS", -1.0)
    lost = await kaika.imagine(ada, f"lost --steps {FAST_STEPS}")

    async def given_up() -> list:
        jobs = await kaika.services.storage.jobs.recent_for_user(ada.id)
        return jobs if jobs and jobs[0].status is JobStatus.FAILED else []

    async with asyncio.timeout(30):
        while not (jobs := await given_up()):  # noqa: ASYNC110 - a database state, no event to wait on
            await asyncio.sleep(0.05)
    assert lost.acked_at is None
    assert "acknowledgement" in jobs[0].error
    assert kaika.services.jobs.in_flight(ada.id) == 0
    monkeypatch.undo()
    await accepted(kaika, ada, f"next --steps {FAST_STEPS}")  # the place was given back
