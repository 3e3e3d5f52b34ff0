"""/imagine with a picture attached, through the real bot and the fake Discord: the attachment is downloaded
from the URL the interaction names, checked, and the grid drawn from it; anything else is refused to the
member alone and nothing of it kept."""

from __future__ import annotations

import io
import time

from PIL import Image

from pipeline.request import Mode
from service.jobs import IMAGE_PROMPT
from testkit.fake_discord import EPHEMERAL_FLAG
from testkit.pictures import png_bomb
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, job_id_of


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 60, 220)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def refusal(kaika, interaction) -> str:
    """The one message the member alone was shown, once shown; nothing public is left."""
    fake = kaika.fake
    await fake.wait_until(lambda: fake.reply_text(interaction))
    messages = [
        fake.messages[mid] for mid in [interaction.original_message_id, *interaction.followup_ids] if mid
    ]
    shown = [m for m in messages if m.get("content")]
    assert len(shown) == 1 and shown[0]["flags"] & EPHEMERAL_FLAG, messages
    assert fake.channel_messages() == []
    return shown[0]["content"]


async def assert_nothing_kept(kaika, user) -> None:
    storage = kaika.services.storage
    assert await storage.jobs.recent_for_user(user.id) == []
    assert await storage.uploads.count_for(user.id) == 0
    images = kaika.settings.data_dir / "images"
    assert not images.exists() or not [path for path in images.rglob("*") if path.is_file()]


async def test_imagine_with_an_attached_picture_draws_from_it(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    picture = kaika.fake.attach("holiday.jpg", photo(), "image/jpeg")
    interaction = await kaika.imagine(ada, f"a blue sea --steps {FAST_STEPS} --iw 1.5", image=picture)
    message = await kaika.finished(interaction)
    assert kaika.fake.labels(int(message["id"])) == GRID_LABELS
    assert picture.downloads == 1

    job = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert job is not None and job.params["mode"] == Mode.IMG2IMG
    kept = job.params[IMAGE_PROMPT]
    assert (kept["width"], kept["height"], kept["iw"]) == (120, 80, 1.5)
    upload = await kaika.services.storage.uploads.get(kept["upload"])
    assert upload is not None and upload.owner_id == ada.id
    stored = Image.open(io.BytesIO(await kaika.services.storage.uploads.data(upload)))
    assert stored.format == "PNG" and stored.getpixel((60, 40))[2] > 180  # the photo's pixels, re-encoded


async def test_an_attachment_that_is_not_a_picture_is_refused_and_nothing_kept(start_kaika):
    kaika = await start_kaika()
    bo = kaika.fake.add_member("bo")
    notes = kaika.fake.attach("notes.txt", b"remember the milk", "text/plain")
    interaction = await kaika.imagine(bo, f"a cat --steps {FAST_STEPS}", image=notes)
    text = await refusal(kaika, interaction)
    assert text == "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    await assert_nothing_kept(kaika, bo)


async def test_a_png_bomb_is_refused_in_one_line_within_seconds(start_kaika):
    kaika = await start_kaika()
    bo = kaika.fake.add_member("bo")
    bomb = kaika.fake.attach("bomb.png", png_bomb())
    started = time.monotonic()
    interaction = await kaika.imagine(bo, f"a cat --steps {FAST_STEPS}", image=bomb)
    text = await refusal(kaika, interaction)
    assert time.monotonic() - started < 5
    assert text.startswith("bomb.png ") and "pixels" in text and "\n" not in text
    await assert_nothing_kept(kaika, bo)


async def test_a_file_over_the_size_limit_is_refused_without_downloading_it(start_kaika):
    kaika = await start_kaika(max_upload_mb=1)
    bo = kaika.fake.add_member("bo")
    huge = kaika.fake.attach("huge.png", b"never read", declared_size=25 * 1024 * 1024)
    text = await refusal(kaika, await kaika.imagine(bo, "a cat", image=huge))
    assert text == "huge.png is 25.0 MB; images up to 1.0 MB are taken."
    assert huge.downloads == 0
    await assert_nothing_kept(kaika, bo)


async def test_iw_without_a_picture_is_refused(start_kaika):
    kaika = await start_kaika()
    bo = kaika.fake.add_member("bo")
    text = await refusal(kaika, await kaika.imagine(bo, "a cat --iw 2"))
    assert text.startswith("--iw sets how closely the images follow an image prompt; attach an image")
    await assert_nothing_kept(kaika, bo)


async def test_a_prompt_starting_with_a_link_to_a_discord_attachment_draws_from_it(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    posted = kaika.fake.attach("earlier.jpg", photo(), "image/jpeg")  # a picture posted in the channel before
    interaction = await kaika.imagine(ada, f"{posted.url} a blue sea --steps {FAST_STEPS} --iw 2")
    message = await kaika.finished(interaction)
    assert posted.downloads == 1
    job = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert job is not None and job.prompt == "a blue sea" and job.params[IMAGE_PROMPT]["iw"] == 2


async def test_a_link_anywhere_but_discord_or_two_image_prompts_are_refused(start_kaika):
    kaika = await start_kaika()
    bo = kaika.fake.add_member("bo")
    text = await refusal(kaika, await kaika.imagine(bo, "http://169.254.169.254/latest/meta-data a fox"))
    assert text == (
        "Image links must be Discord attachments (cdn.discordapp.com, media.discordapp.net); "
        "attach the picture instead."
    )
    picture = kaika.fake.attach("fox.jpg", photo(), "image/jpeg")
    both = await kaika.imagine(bo, f"{picture.url} a fox", image=picture)
    assert (
        await refusal(kaika, both) == "/imagine takes one image prompt: attach a picture or link one, once."
    )
    missing = await kaika.imagine(bo, f"{kaika.fake.base_url}/attachments/1/gone.png a fox")
    assert (await refusal(kaika, missing)).startswith("gone.png could not be downloaded (HTTP 404)")
    assert picture.downloads == 0
    await assert_nothing_kept(kaika, bo)
