"""The grid's buttons: U (the image alone), V (variations), 🔄 (re-roll), and the single image's buttons."""

from __future__ import annotations

from pipeline.images import display_png
from testkit.fake_discord import EPHEMERAL_FLAG
from tests.fixtures.discord_helpers import (
    FAST_STEPS,
    GRID_LABELS,
    REFINED_SINGLE_LABELS,
    SINGLE_LABELS,
    grid_of,
    job_id_of,
    png_size,
)


def image_of(kaika, message: dict) -> bytes:
    [attachment] = message["attachments"]
    return kaika.fake.files[int(message["id"])][attachment["filename"]]


async def test_u2_posts_the_second_image_alone_and_an_upscale_stays_with_the_owner(start_kaika):
    kaika = await start_kaika()
    ada, bo = kaika.fake.add_member("ada"), kaika.fake.add_member("bo")
    grid_id, grid_job = await grid_of(kaika, ada)

    press = await kaika.fake.press(bo, grid_id, "U2")
    message = await kaika.finished(press)
    assert not message["flags"] & EPHEMERAL_FLAG
    assert kaika.fake.labels(int(message["id"])) == SINGLE_LABELS
    assert "Image #2" in message["content"]

    storage = kaika.services.storage
    parent = await storage.jobs.get(grid_job)
    upscale = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert upscale.kind == "upscale" and upscale.parent_job_id == grid_job and upscale.parent_image_index == 1
    assert upscale.owner_id == ada.id and upscale.requester_id == bo.id  # Midjourney's rule
    stored = await storage.images.get(parent.images[1].storage_key)
    # Shown enlarged like the grid's cells (the 64-pixel image at 256); the stored image keeps its size.
    assert (png_size(stored), png_size(image_of(kaika, message))) == ((64, 64), (256, 256))
    assert image_of(kaika, message) == display_png(stored)


async def test_v3_posts_four_variations_linked_to_the_third_image(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    grid_id, grid_job = await grid_of(kaika, ada)

    message = await kaika.finished(await kaika.fake.press(ada, grid_id, "V3"))
    assert kaika.fake.labels(int(message["id"])) == GRID_LABELS
    assert png_size(image_of(kaika, message)) == (
        512,
        512,
    )  # a grid of four 64x64 variations, each shown at 256
    variation_id = job_id_of(kaika, int(message["id"]))
    lineage = await kaika.services.storage.jobs.lineage(variation_id)
    assert [(j.kind, j.parent_image_index) for j in lineage] == [("imagine", None), ("variation", 2)]
    assert lineage[0].id == grid_job and lineage[1].owner_id == ada.id


async def test_reroll_by_another_member_is_theirs_with_a_new_seed(start_kaika):
    kaika = await start_kaika()
    ada, bo = kaika.fake.add_member("ada"), kaika.fake.add_member("bo")
    grid_id, grid_job = await grid_of(kaika, ada, f"a green tree --steps {FAST_STEPS} --seed 5")

    message = await kaika.finished(await kaika.fake.press(bo, grid_id, "🔄"))
    assert kaika.fake.labels(int(message["id"])) == GRID_LABELS
    assert f"<@{bo.id}>" in message["content"]
    reroll = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert reroll.kind == "reroll" and reroll.parent_job_id == grid_job
    assert reroll.owner_id == bo.id and reroll.prompt == "a green tree" and reroll.seed != 5


async def test_single_image_buttons_upscale_and_vary(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    single = await kaika.finished(await kaika.fake.press(ada, grid_id, "U1"))

    upscaled = await kaika.finished(await kaika.fake.press(ada, int(single["id"]), "Upscale (Creative)"))
    record = await kaika.services.storage.jobs.get(job_id_of(kaika, int(upscaled["id"])))
    assert (record.images[0].width, record.images[0].height) == (128, 128)  # twice the 64x64 image
    assert png_size(image_of(kaika, upscaled)) == (256, 256)  # shown enlarged, as grid cells are
    assert kaika.fake.labels(int(upscaled["id"])) == REFINED_SINGLE_LABELS

    varied = await kaika.finished(await kaika.fake.press(ada, int(single["id"]), "Vary (Subtle)"))
    assert kaika.fake.labels(int(varied["id"])) == GRID_LABELS
    chain = await kaika.services.storage.jobs.lineage(job_id_of(kaika, int(varied["id"])))
    assert [j.kind for j in chain] == ["imagine", "upscale", "variation"]


async def test_owner_only_buttons_refuse_others_but_not_the_owner(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, _ = await grid_of(kaika, ada)

    setting = await fake.subcommand(fake.guild_owner, "admin buttons", who="owner")
    await fake.wait_until(lambda: fake.original(setting))
    assert "owner" in fake.reply_text(setting)

    refused = await fake.wait_acked(await fake.press(bo, grid_id, "U1"))
    assert refused.ephemeral and "Only the owner" in fake.reply_text(refused)
    assert f"<@{ada.id}>" in fake.reply_text(refused)  # Discord mentions the owner
    done = await kaika.finished(await fake.press(ada, grid_id, "U1"))
    assert fake.labels(int(done["id"])) == SINGLE_LABELS


async def test_forged_and_deleted_jobs_get_an_ephemeral_answer(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, grid_job = await grid_of(kaika, ada)

    for custom_id in (
        "kaika:u:doesnotexist:0",
        f"kaika:zz:{grid_job}:0",
        f"kaika:u:{grid_job}:9",
        "not-kaika",
    ):
        forged = await fake.wait_acked(await fake.press_custom_id(ada, grid_id, custom_id, forge=True))
        assert forged.ephemeral and "This job no longer exists." in fake.reply_text(forged), custom_id

    deleted = await fake.slash(ada, "delete", job_id=grid_job)
    await fake.wait_until(lambda: fake.original(deleted))
    stale = await fake.wait_acked(await fake.press(ada, grid_id, "V1"))
    assert stale.ephemeral and "This job no longer exists." in fake.reply_text(stale)


async def test_buttons_work_after_a_restart(start_kaika):
    first = await start_kaika()
    ada = first.fake.add_member("ada")
    grid_id, grid_job = await grid_of(first, ada)
    await first.close()

    second = await start_kaika()
    message = await second.finished(await second.fake.press(ada, grid_id, "U3"))
    assert second.fake.labels(int(message["id"])) == SINGLE_LABELS
    upscale = await second.services.storage.jobs.get(job_id_of(second, int(message["id"])))
    assert upscale.parent_job_id == grid_job and upscale.parent_image_index == 2
