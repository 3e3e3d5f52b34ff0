"""/settings negative and suffix: saved once, applied to every /imagine, refused when they would not parse."""

from __future__ import annotations

from tests.fixtures.discord_helpers import FAST_STEPS, answer, grid_of, job_id_of


async def test_suffix_and_negative_prompt_are_applied_and_shown(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    saved = await answer(
        fake,
        await fake.slash(ada, "settings", suffix=f"oil painting --steps {FAST_STEPS}", negative="**blurry**"),
    )
    assert f"Your suffix: oil painting --steps {FAST_STEPS}" in saved
    assert "Your negative prompt: \\*\\*blurry\\*\\*" in saved  # the member's words, escaped

    grid_id, job_id = await grid_of(kaika, ada, "a harbour --seed 4")
    assert fake.messages[grid_id]["content"].startswith(
        f"**a harbour oil painting --seed 4 --steps {FAST_STEPS} --no \\*\\*blurry\\*\\*** — <@{ada.id}>"
    )
    job = await storage.jobs.get(job_id)
    assert (job.prompt, job.negative_prompt) == ("a harbour oil painting", "**blurry**")

    cleared = await answer(fake, await fake.slash(ada, "settings", suffix="none"))
    assert "suffix" not in cleared and "negative prompt" in cleared
    message = await kaika.finished(await kaika.imagine(ada, f"a harbour --steps {FAST_STEPS}"))
    assert (await storage.jobs.get(job_id_of(kaika, int(message["id"])))).prompt == "a harbour"


async def test_a_suffix_that_would_not_parse_is_refused_and_nothing_saved(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    refused = await fake.slash(ada, "settings", suffix="oil painting --ar sideways", negative="blurry")
    assert "--ar needs W:H" in await answer(fake, refused) and refused.ephemeral
    assert await kaika.services.storage.users.defaults(ada.id) == {}
