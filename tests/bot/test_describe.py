"""/describe through the real bot and the fake Discord: four prompts for an attached picture, each a button
that runs /imagine with it, before and after a restart."""

from __future__ import annotations

import io

from pipeline.demo.scenes import Scene, Shape, render
from storage.records import JobKind
from testkit.fake_discord import EPHEMERAL_FLAG
from tests.fixtures.discord_helpers import GRID_LABELS, job_id_of

PICTURE = Scene("blue", (Shape("circle", "red", 18, 32, 12, "left"),))


def png(scene: Scene = PICTURE) -> bytes:
    buffer = io.BytesIO()
    render(scene, size=128).save(buffer, format="PNG")
    return buffer.getvalue()


async def described(kaika, user, data: bytes = b"", filename: str = "scene.png"):
    attachment = kaika.fake.attach(filename, data or png())
    interaction = await kaika.fake.slash(user, "describe", image=attachment)
    await kaika.fake.wait_until(lambda: kaika.fake.reply_text(interaction))
    return interaction


async def test_describe_offers_four_prompts_as_buttons_that_survive_a_restart(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    interaction = await described(kaika, ada)
    message = fake.original(interaction)
    assert message is not None and not message["flags"] & EPHEMERAL_FLAG
    lines = message["content"].splitlines()
    assert lines[0] == f"**Described** — <@{ada.id}>"
    assert lines[1] == "1️⃣ a red circle on a blue background"
    assert lines[2] == "2️⃣ a red circle on the left on a blue background"
    assert len(lines) == 5
    assert fake.labels(int(message["id"])) == ["1", "2", "3", "4"]
    assert [a["filename"] for a in message["attachments"]] == ["described.png"]

    job_id = fake.custom_ids(int(message["id"]))[0].split(":")[2]
    job = await kaika.services.storage.jobs.get(job_id)
    assert job is not None and job.kind is JobKind.DESCRIBE and job.owner_id == ada.id
    assert len(job.params["prompts"]) == 4 and job.params["describer"] == "scene checker"
    assert await kaika.services.storage.uploads.count_for(ada.id) == 1

    await kaika.close()
    kaika = await start_kaika()  # the same DATA_DIR: a restarted bot
    bo = fake.add_member("bo")
    pressed = await fake.press(bo, int(message["id"]), "2")
    grid = await kaika.finished(pressed)
    assert fake.labels(int(grid["id"])) == GRID_LABELS
    assert grid["content"].startswith("**a red circle on the left on a blue background** — ")
    imagined = await kaika.services.storage.jobs.get(job_id_of(kaika, int(grid["id"])))
    assert imagined is not None and (imagined.kind, imagined.owner_id) == (JobKind.IMAGINE, bo.id)
    assert imagined.params["described_by"] == {"job": job_id, "index": 1}


async def test_describe_refuses_a_file_that_is_not_a_picture_and_keeps_nothing(start_kaika):
    kaika = await start_kaika()
    bo = kaika.fake.add_member("bo")
    interaction = await described(kaika, bo, b"%PDF-1.4", "report.pdf")
    assert interaction.ephemeral
    assert kaika.fake.reply_text(interaction) == (
        "report.pdf is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    )
    assert await kaika.services.storage.jobs.recent_for_user(bo.id) == []
    assert await kaika.services.storage.uploads.count_for(bo.id) == 0


async def test_a_forged_describe_button_is_told_the_job_no_longer_exists(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    message = fake.original(await described(kaika, ada))
    job_id = fake.custom_ids(int(message["id"]))[0].split(":")[2]
    for forged in (f"kaika:i:{job_id}:7", "kaika:i:nosuchjob:0"):
        pressed = await fake.press_custom_id(ada, int(message["id"]), forged, forge=True)
        await fake.wait_until(lambda pressed=pressed: fake.reply_text(pressed))
        assert pressed.ephemeral and fake.reply_text(pressed) == "This job no longer exists."
    assert [job.kind for job in await kaika.services.storage.jobs.recent_for_user(ada.id)] == [
        JobKind.DESCRIBE
    ]
