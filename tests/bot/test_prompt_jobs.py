"""/imagine prompts that make several jobs (--repeat, {a, b} permutations): one message per job, all or none."""

from __future__ import annotations

from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS


async def messages_of(kaika, interaction, count: int) -> list[dict]:
    """The interaction's response and follow-ups once `count` of them show a grid, in the order posted."""
    fake = kaika.fake

    def done():
        ids = [interaction.original_message_id, *interaction.followup_ids]
        messages = [fake.messages.get(mid) for mid in ids if mid is not None]
        finished = [m for m in messages if m and m.get("components")]
        return messages if len(finished) == count == len(messages) else None

    messages = await fake.wait_until(done, 60)
    await kaika.services.jobs.wait_idle()
    return messages


def job_of(kaika, message) -> str:
    return kaika.fake.custom_ids(int(message["id"]))[0].split(":")[2]


async def refused(kaika, user, prompt) -> str:
    interaction = await kaika.fake.wait_acked(await kaika.imagine(user, prompt))
    assert interaction.response_type == 4 and interaction.ephemeral, interaction.response
    return kaika.fake.reply_text(interaction)


async def test_permutations_answer_with_one_grid_message_per_combination(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    interaction = await kaika.imagine(ada, f"a {{red, blue}} circle --steps {FAST_STEPS} --seed 3")

    first, second = await messages_of(kaika, interaction, 2)
    assert "a red circle" in first["content"] and "a blue circle" in second["content"]
    for message in (first, second):
        assert kaika.fake.labels(int(message["id"])) == GRID_LABELS
        assert f"<@{ada.id}>" in message["content"] and not message["flags"] & 64
    red, blue = [await kaika.services.storage.jobs.get(job_of(kaika, m)) for m in (first, second)]
    assert (red.prompt, blue.prompt) == ("a red circle", "a blue circle")
    assert red.seed == blue.seed == 3  # the same seed, so the options can be compared
    assert red.status == blue.status == "done" and red.message_id == int(first["id"])
    assert blue.message_id == int(second["id"])


async def test_repeat_makes_that_many_jobs_even_past_the_jobs_in_flight_limit(start_kaika):
    kaika = await start_kaika(max_jobs_per_user=2)
    ada = kaika.fake.add_member("ada")
    interaction = await kaika.imagine(ada, f"a green square --steps {FAST_STEPS} --seed 10 --repeat 3")

    messages = await messages_of(kaika, interaction, 3)
    jobs = [await kaika.services.storage.jobs.get(job_of(kaika, m)) for m in messages]
    assert [job.seed for job in jobs] == [10, 14, 18]
    assert [image.seed for image in jobs[1].images] == [14, 15, 16, 17]
    assert len({job.id for job in jobs}) == 3 and all(job.kind == "imagine" for job in jobs)
    # Each counts as a job of its own: in the member's history and for the quota.
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 3


async def test_too_many_jobs_for_one_prompt_are_refused_ephemerally_and_nothing_is_recorded(start_kaika):
    kaika = await start_kaika(max_jobs_per_prompt=3)
    ada = kaika.fake.add_member("ada")
    assert "--repeat must be between 1 and 3 (got 4)" in await refused(kaika, ada, "a cat --repeat 4")
    text = await refused(kaika, ada, "a {red, blue} cat --repeat 2")
    assert "This prompt makes 4 jobs (2 permutations x --repeat); one prompt may make at most 3." in text
    text = await refused(kaika, ada, "a {red, blue} {cat, dog}")
    assert "The {…} options in this prompt make 4 combinations; one prompt may make at most 3 jobs." in text
    assert "A { in the prompt has no matching }" in await refused(kaika, ada, "a {red, blue cat")
    assert await kaika.services.storage.jobs.recent_for_user(ada.id) == []


async def test_a_prompt_needing_more_jobs_than_the_quota_has_left_records_none(start_kaika):
    kaika = await start_kaika(admin_user_ids=[])
    fake = kaika.fake
    ada = fake.add_member("ada")
    setting = await fake.subcommand(fake.guild_owner, "admin quota", jobs=3)
    await fake.wait_until(lambda: fake.original(setting))
    await messages_of(kaika, await kaika.imagine(ada, f"one --steps {FAST_STEPS}"), 1)

    text = await refused(kaika, ada, f"more --steps {FAST_STEPS} --repeat 3")
    assert (
        text
        == "This prompt makes 3 jobs, but 2 of your 3 jobs a day are left; ask for fewer (--repeat, {…} options)."
    )
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 1
    messages = await messages_of(kaika, await kaika.imagine(ada, f"more --steps {FAST_STEPS} --r 2"), 2)
    assert len(messages) == 2 and len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 3


async def test_a_job_whose_message_discord_refuses_is_given_up_and_the_shown_ones_run(
    start_kaika, monkeypatch
):
    import types

    import discord

    from bot.flow import NOT_ACKNOWLEDGED

    async def refused_follow_up(self, *args, **kwargs):
        raise discord.HTTPException(types.SimpleNamespace(status=500, reason="Server Error"), "refused")

    monkeypatch.setattr(discord.Webhook, "send", refused_follow_up)
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    interaction = await kaika.imagine(ada, f"a {{red, blue}} circle --steps {FAST_STEPS}")

    [shown] = await messages_of(kaika, interaction, 1)
    assert "a red circle" in shown["content"]
    jobs = {job.prompt: job for job in await kaika.services.storage.jobs.recent_for_user(ada.id)}
    assert jobs["a red circle"].status == "done"
    assert (jobs["a blue circle"].status, jobs["a blue circle"].error) == ("failed", NOT_ACKNOWLEDGED)
    assert kaika.services.jobs.in_flight(ada.id) == 0
