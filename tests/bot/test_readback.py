"""Prompts people can read back: the flags on a result's first line, ℹ️, and the seed in /history and /show."""

from __future__ import annotations

from tests.fixtures.discord_helpers import FAST_STEPS, answer, grid_of, job_id_of


async def test_the_first_line_shows_the_flags_as_typed_and_the_saved_ones(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    await answer(fake, await fake.slash(ada, "settings", stylize=200))

    grid_id, _ = await grid_of(kaika, ada, f"a lighthouse —ar 1:1  --seed 11 --steps {FAST_STEPS}")
    first_line = fake.messages[grid_id]["content"].split("\n")[0]
    assert first_line == (
        f"**a lighthouse --ar 1:1 --seed 11 --steps {FAST_STEPS} --stylize 200** — <@{ada.id}>"
    )


async def test_info_button_tells_the_member_every_parameter(start_kaika, tiny_model_dir):
    kaika = await start_kaika()
    fake = kaika.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, grid_job = await grid_of(kaika, ada, f"a red boat --seed 11 --steps {FAST_STEPS} --no sails")

    info = await fake.press(bo, grid_id, "ℹ️")
    text = await answer(fake, info)
    assert info.ephemeral
    assert f"Job `{grid_job}`" in text and f"<@{ada.id}>" in text
    assert f"Prompt: a red boat --seed 11 --steps {FAST_STEPS} --no sails" in text
    assert "Negative prompt: sails" in text
    assert "Seeds: #1 11, #2 12, #3 13, #4 14" in text
    # The model its images name (the tiny model's folder), not just "the default".
    assert f"Model: {tiny_model_dir.name}\n" in text and f"Steps: {FAST_STEPS}, guidance: 7.5" in text
    assert "Size: 64x64" in text
    assert not fake.channel_messages()[-1]["content"].startswith("Job")  # nothing posted for everyone

    varied = await kaika.finished(await fake.press(ada, grid_id, "V2"))
    variation = job_id_of(kaika, int(varied["id"]))
    text = await answer(fake, await fake.press(bo, int(varied["id"]), "ℹ️"))
    record = await kaika.services.storage.jobs.get(variation)
    seeds = ", ".join(f"#{i} {seed}" for i, seed in enumerate([image.seed for image in record.images], 1))
    assert f"Seeds: {seeds}" in text and "strength 0.75" in text
    assert f"From job {grid_job}, image #2" in text
    # The variation drew a new seed, so the first line no longer claims --seed 11.
    assert varied["content"].startswith(f"**a red boat --steps {FAST_STEPS} --no sails** (variations)")


async def test_info_on_a_deleted_job_says_it_is_gone(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, grid_job = await grid_of(kaika, ada)
    await answer(fake, await fake.slash(ada, "delete", job_id=grid_job))

    info = await fake.press(ada, grid_id, "ℹ️")
    assert await answer(fake, info) == "This job no longer exists." and info.ephemeral


async def test_history_and_show_include_the_seed_and_flags(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    _, job_id = await grid_of(kaika, ada, f"a lighthouse --ar 1:1 --seed 21 --steps {FAST_STEPS}")

    history = await answer(fake, await fake.slash(ada, "history"))
    assert (
        f"`{job_id}` imagine done: a lighthouse --ar 1:1 --seed 21 --steps {FAST_STEPS} (seed 21)" in history
    )

    show = await fake.slash(ada, "show", job_id=job_id)
    shown = await fake.wait_until(lambda: (m := fake.original(show)) and m.get("components") and m)
    assert shown["content"] == (
        f"**a lighthouse --ar 1:1 --seed 21 --steps {FAST_STEPS}** — <@{ada.id}>\n-# Seeds: 21, 22, 23, 24"
    )


async def test_a_long_prompt_with_flags_still_fits_discord(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    words = " ".join(["**a** _very_ long prompt"] * 40)  # about 1000 characters of markdown to escape
    grid_id, _ = await grid_of(kaika, ada, f"{words} --steps {FAST_STEPS} --seed 3")
    assert len(fake.messages[grid_id]["content"]) <= 2000
    text = await answer(fake, await fake.press(ada, grid_id, "ℹ️"))
    assert len(text) <= 2000 and "Seeds: #1 3, #2 4, #3 5, #4 6" in text
