"""/blend through the real bot and the fake Discord: attached pictures downloaded, mixed and drawn again."""

from __future__ import annotations

import io

from PIL import Image

from service.jobs import BLEND
from storage.records import JobKind
from testkit.fake_discord import EPHEMERAL_FLAG
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, job_id_of


def picture(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (70, 50), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_blend_mixes_the_attached_pictures_into_a_grid(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    red, blue = fake.attach("red.png", picture((255, 0, 0))), fake.attach("blue.png", picture((0, 0, 255)))
    interaction = await fake.slash(ada, "blend", image1=red, image2=blue, prompt=f"--steps {FAST_STEPS}")
    message = await kaika.finished(interaction)
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert message["content"].startswith(f"**\\--steps {FAST_STEPS}** (blend) — <@{ada.id}>")  # no words
    assert (red.downloads, blue.downloads) == (1, 1)
    job = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert job is not None and job.kind is JobKind.BLEND and len(job.params[BLEND]) == 2
    assert await kaika.services.storage.uploads.count_for(ada.id) == 2


async def test_a_blend_with_a_picture_kaika_does_not_take_is_refused_and_keeps_nothing(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    bo = fake.add_member("bo")
    red, notes = (
        fake.attach("red.png", picture((255, 0, 0))),
        fake.attach("notes.txt", b"hello", "text/plain"),
    )
    interaction = await fake.slash(bo, "blend", image1=red, image2=notes)
    await fake.wait_until(lambda: fake.reply_text(interaction))
    shown = [
        fake.messages[mid] for mid in [interaction.original_message_id, *interaction.followup_ids] if mid
    ]
    assert [m["content"] for m in shown if m.get("content")] == [
        "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    ]
    assert all(m["flags"] & EPHEMERAL_FLAG for m in shown if m.get("content"))
    assert await kaika.services.storage.jobs.recent_for_user(bo.id) == []
    assert await kaika.services.storage.uploads.count_for(bo.id) == 0
