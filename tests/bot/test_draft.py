"""Draft mode in Discord: /settings mode:draft, a --draft grid's Enhance 1–4, and Enhance refused elsewhere."""

from __future__ import annotations

from testkit.fake_discord import EPHEMERAL_FLAG
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, SINGLE_LABELS, answer, job_id_of

DRAFT_GRID_LABELS = [*GRID_LABELS[:9], "Enhance 1", "Enhance 2", "Enhance 3", "Enhance 4", *GRID_LABELS[9:]]


async def test_draft_mode_grids_have_enhance_which_posts_the_image_at_full_quality(start_kaika):
    kaika = await start_kaika()
    ada, bo = kaika.fake.add_member("ada"), kaika.fake.add_member("bo")
    said = await answer(kaika.fake, await kaika.fake.slash(ada, "settings", mode="draft"))
    assert "draft mode" in said

    grid = await kaika.finished(await kaika.imagine(ada, "a blue square --seed 8"))
    assert kaika.fake.labels(int(grid["id"])) == DRAFT_GRID_LABELS
    assert "a blue square --seed 8 --draft" in grid["content"]
    grid_job = await kaika.services.storage.jobs.get(job_id_of(kaika, int(grid["id"])))
    assert grid_job.params["draft"] is True

    message = await kaika.finished(await kaika.fake.press(bo, int(grid["id"]), "Enhance 3"))
    assert not message["flags"] & EPHEMERAL_FLAG
    assert kaika.fake.labels(int(message["id"])) == SINGLE_LABELS
    assert "(enhance)" in message["content"] and "Image #3" in message["content"]
    enhanced = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (enhanced.kind, enhanced.parent_job_id, enhanced.parent_image_index) == ("enhance", grid_job.id, 2)
    assert enhanced.seed == 10 and enhanced.params["draft"] is False
    assert enhanced.owner_id == bo.id


async def test_a_full_quality_grid_has_no_enhance_and_a_forged_press_is_refused_to_the_presser(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    grid = await kaika.finished(await kaika.imagine(ada, f"a blue square --steps {FAST_STEPS}"))
    assert kaika.fake.labels(int(grid["id"])) == GRID_LABELS
    grid_job = job_id_of(kaika, int(grid["id"]))

    fake = kaika.fake
    forged = await fake.wait_acked(
        await fake.press_custom_id(ada, int(grid["id"]), f"kaika:e:{grid_job}:0", forge=True)
    )
    assert forged.ephemeral
    assert fake.reply_text(forged) == (
        "Enhance makes an image of a --draft grid again at full quality; this job is not a --draft grid."
    )
    assert [job.id for job in await kaika.services.storage.jobs.recent_for_user(ada.id, limit=10)] == [
        grid_job
    ]
