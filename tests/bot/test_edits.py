"""A single image's editing buttons: Zoom Out, Pan, Make Square, and Vary (Region) / Custom Zoom's modal."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from bot.views import single_view
from pipeline.editing import feather_width
from pipeline.request import Mode
from service.jobs import EDITS, offered_actions
from service.signin import SIGNIN_LINK_PATH, redeem_signin_link
from storage.records import JobKind
from tests.fixtures.discord_helpers import (
    FAST_STEPS,
    GRID_LABELS,
    SINGLE_LABELS,
    answer,
    grid_of,
    job_id_of,
    png_size,
)

REGION = "Region to vary"
FACTOR = "Zoom out by (1 to 2)"
PROMPT = "Prompt and flags (Remix)"


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


async def single_of(kaika, member, prompt: str = f"a blue square --steps {FAST_STEPS}") -> tuple[int, str]:
    """U1 of a fresh grid: the single image's message id and its job id."""
    grid_id, _ = await grid_of(kaika, member, prompt)
    message = await kaika.finished(await kaika.fake.press(member, grid_id, "U1"))
    return int(message["id"]), job_id_of(kaika, int(message["id"]))


async def images_of(kaika, job_id: str) -> list[bytes]:
    storage = kaika.services.storage
    job = await storage.jobs.get(job_id)
    return [await storage.images.get(image.storage_key) for image in job.images]


def test_a_model_without_inpainting_shows_no_edit_buttons():
    without = offered_actions({Mode.TXT2IMG, Mode.IMG2IMG, Mode.UPSCALE})
    labels = [item.item.label or str(item.item.emoji) for item in single_view("job", 0, without).children]
    assert labels[:4] == ["Vary (Subtle)", "Vary (Strong)", "Upscale (Subtle)", "Upscale (Creative)"]
    assert not {"Vary (Region)", "Zoom Out 2x", "Make Square", "⬅️"} & set(labels)
    assert not EDITS & without


async def test_zoom_out_2x_puts_the_image_in_the_middle_of_a_new_grid_owned_by_the_presser(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    single_id, single_job = await single_of(kaika, ada)
    assert fake.labels(single_id) == SINGLE_LABELS  # square: no Make Square

    message = await kaika.finished(await fake.press(bo, single_id, "Zoom Out 2x"))
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert message["content"].startswith(f"**a blue square --steps {FAST_STEPS}** (zoom out) — <@{bo.id}>")
    zoom = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (zoom.kind, zoom.parent_job_id, zoom.parent_image_index) == (JobKind.ZOOM, single_job, 0)
    assert (zoom.owner_id, zoom.requester_id) == (bo.id, bo.id)

    [source] = await images_of(kaika, single_job)
    shrunk = np.asarray(
        Image.open(io.BytesIO(source)).convert("RGB").resize((32, 32), Image.Resampling.LANCZOS),
        dtype=np.int16,
    )
    f = feather_width(64, 64)
    for image in await images_of(kaika, zoom.id):
        assert png_size(image) == (64, 64)
        assert (pixels(image)[16 + f : 48 - f, 16 + f : 48 - f] == shrunk[f:-f, f:-f]).all()


async def test_pan_left_then_make_square_of_the_wide_image(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)

    panned = await kaika.finished(await fake.press(ada, single_id, "⬅️"))
    pan = await storage.jobs.get(job_id_of(kaika, int(panned["id"])))
    assert pan.kind is JobKind.PAN and pan.params["direction"] == "left"
    assert (pan.images[0].width, pan.images[0].height) == (72, 48)

    wide = await kaika.finished(await fake.press(ada, int(panned["id"]), "U2"))
    assert "Make Square" in fake.labels(int(wide["id"]))  # a wide image can be made square
    for job_id, square_offered in ((job_id_of(kaika, int(wide["id"])), True), (single_job, False)):
        show = await fake.slash(ada, "show", job_id=job_id)  # /show posts the same buttons
        shown = await fake.wait_until(lambda s=show: (m := fake.original(s)) and m.get("components") and m)
        assert ("Make Square" in fake.labels(int(shown["id"]))) is square_offered
    squared = await kaika.finished(await fake.press(ada, int(wide["id"]), "Make Square"))
    square = await storage.jobs.get(job_id_of(kaika, int(squared["id"])))
    assert square.kind is JobKind.SQUARE and (square.images[0].width, square.images[0].height) == (64, 64)
    lineage = await storage.jobs.lineage(square.id)
    assert [job.kind for job in lineage] == ["imagine", "upscale", "pan", "upscale", "square"]


async def test_vary_region_asks_which_part_and_keeps_the_rest(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)

    opened = await fake.wait_acked(await fake.press(ada, single_id, "Vary (Region)"))
    assert list(fake.modal_inputs(opened)) == [REGION]  # Remix is off: no prompt to edit
    assert fake.modal(opened)["title"] == "Vary (Region)"
    assert len(await storage.jobs.recent_for_user(ada.id)) == 2  # the grid and U1: nothing starts yet

    message = await kaika.finished(await fake.submit_modal(ada, opened, {REGION: "left"}))
    assert message["content"].startswith(f"**a blue square --steps {FAST_STEPS}** (vary region)")
    region = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (region.kind, region.parent_job_id, region.parent_image_index) == (JobKind.REGION, single_job, 0)
    assert region.params["box"] == [0, 0, 50, 100] and region.owner_id == ada.id

    [source] = await images_of(kaika, single_job)
    f = feather_width(64, 64)
    for image in await images_of(kaika, region.id):
        assert (pixels(image)[:, 32 + f :] == pixels(source)[:, 32 + f :]).all()  # the right half is kept
        assert (pixels(image)[:, :32] != pixels(source)[:, :32]).any()


async def test_custom_zoom_and_vary_region_refuse_a_bad_answer_ephemerally_and_record_nothing(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, _ = await single_of(kaika, ada)
    before = await storage.jobs.recent_for_user(ada.id)

    for button, label, typed, said in [
        ("Custom Zoom", FACTOR, "3", "The zoom factor must be from 1 to 2 (got 3)."),
        ("Custom Zoom", FACTOR, "1", "A zoom factor of 1 leaves the image as it is"),
        ("Custom Zoom", FACTOR, "far", "The zoom factor is a number such as 1.5, not 'far'."),
        ("Vary (Region)", REGION, "middle", "The region 'middle' is not one Kaika knows"),
        ("Vary (Region)", REGION, "60,0,50,50", "goes past the image"),
    ]:
        opened = await fake.wait_acked(await fake.press(ada, single_id, button))
        refused = await fake.submit_modal(ada, opened, {label: typed})
        assert said in await answer(fake, refused) and refused.ephemeral, typed
    assert await storage.jobs.recent_for_user(ada.id) == before
    assert kaika.services.jobs.in_flight(ada.id) == 0

    opened = await fake.wait_acked(await fake.press(ada, single_id, "Custom Zoom"))
    assert fake.modal_inputs(opened)[FACTOR]["value"] == "1.5"
    message = await kaika.finished(await fake.submit_modal(ada, opened, {FACTOR: "1.25"}))
    zoom = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert zoom.kind is JobKind.ZOOM and zoom.params["factor"] == 1.25


async def test_with_remix_on_vary_region_takes_a_new_prompt_for_the_region(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, _ = await single_of(kaika, ada, f"a blue square --seed 4 --steps {FAST_STEPS}")
    assert "Remix is on" in await answer(fake, await fake.press(ada, single_id, "Remix"))

    opened = await fake.wait_acked(await fake.press(ada, single_id, "Vary (Region)"))
    assert fake.modal_inputs(opened)[PROMPT]["value"] == f"a blue square --seed 4 --steps {FAST_STEPS}"
    submitted = await fake.submit_modal(
        ada, opened, {REGION: "25,25,50,50", PROMPT: f"a red circle --steps {FAST_STEPS}"}
    )
    message = await kaika.finished(submitted)
    region = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert region.kind is JobKind.REGION and region.prompt == "a red circle"
    assert region.params["box"] == [25, 25, 50, 50]


async def test_owner_only_buttons_refuse_an_edit_before_asking_anything(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    single_id, _ = await single_of(kaika, ada)
    await answer(fake, await fake.subcommand(fake.guild_owner, "admin buttons", who="owner"))

    for button in ("Zoom Out 1.5x", "➡️", "Vary (Region)", "Custom Zoom"):
        refused = await fake.wait_acked(await fake.press(bo, single_id, button))
        assert refused.response_type != 9, button  # no modal for who may not press
        assert refused.ephemeral and "Only the owner" in fake.reply_text(refused), button
    assert await kaika.services.storage.jobs.recent_for_user(bo.id) == []
    done = await kaika.finished(await fake.press(ada, single_id, "⬇️"))
    assert fake.labels(int(done["id"])) == GRID_LABELS


async def test_a_forged_edit_submission_is_answered_as_gone(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)
    opened = await fake.wait_acked(await fake.press(ada, single_id, "Vary (Region)"))
    opened.response["data"]["custom_id"] = f"kaika:asked:zt:{single_job}:0"  # a button that asks nothing
    forged = await fake.submit_modal(ada, opened)
    assert await answer(fake, forged) == "This job no longer exists." and forged.ephemeral
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 2  # the grid and U1 only


async def test_with_remix_on_a_pan_opens_the_prompt_and_extends_with_the_edit(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)
    assert "Remix is on" in await answer(fake, await fake.press(ada, single_id, "Remix"))

    opened = await fake.wait_acked(await fake.press(ada, single_id, "⬆️"))
    assert fake.modal(opened)["title"] == "Remix: pan up"
    submitted = await fake.submit_modal(
        ada, opened, {"Prompt and flags": f"a green sky --steps {FAST_STEPS}"}
    )
    message = await kaika.finished(submitted)
    pan = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (pan.kind, pan.prompt, pan.parent_job_id) == (JobKind.PAN, "a green sky", single_job)
    assert pan.params["direction"] == "up" and (pan.images[0].width, pan.images[0].height) == (48, 72)


async def test_with_remix_on_custom_zoom_takes_a_new_aspect_ratio(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)
    assert "Remix is on" in await answer(fake, await fake.press(ada, single_id, "Remix"))

    opened = await fake.wait_acked(await fake.press(ada, single_id, "Custom Zoom"))
    assert list(fake.modal_inputs(opened)) == [FACTOR, PROMPT]
    submitted = await fake.submit_modal(
        ada, opened, {FACTOR: "1", PROMPT: f"a blue square --ar 2:1 --steps {FAST_STEPS}"}
    )
    message = await kaika.finished(submitted)
    zoom = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (zoom.kind, zoom.parent_job_id, zoom.params["canvas"]) == (JobKind.ZOOM, single_job, [88, 40])
    assert (zoom.images[0].width, zoom.images[0].height) == (88, 40)  # 2:1 within the 64x64 budget


async def test_with_the_web_companion_vary_region_offers_its_editor_by_a_sign_in_link(start_kaika):
    """Where WEB_BASE_URL is set, Vary (Region) answers the member alone with a link that signs them in to the
    region editor over this image, and a button that asks for the region in words, as without it."""
    kaika = await start_kaika(web_base_url="https://kaika.example/")
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    single_id, single_job = await single_of(kaika, ada)

    offered = await fake.wait_acked(await fake.press(ada, single_id, "Vary (Region)"))
    assert offered.response_type != 9 and offered.ephemeral  # no modal yet: the choice, for ada alone
    assert "region editor" in fake.reply_text(offered) and "keep it to yourself" in fake.reply_text(offered)
    [reply_id] = [offered.original_message_id or offered.followup_ids[-1]]
    buttons = [b for row in fake.messages[reply_id]["components"] for b in row["components"]]
    [link] = [b["url"] for b in buttons if b.get("style") == 5]
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == "https://kaika.example"
    assert parse_qs(parts.query) == {"next": [f"/imagine/{single_job}/region/0"]}
    token = parts.path.removeprefix(SIGNIN_LINK_PATH)
    assert await redeem_signin_link(storage, token) == (ada.id, "ada")  # it signs ada in, once
    assert len(await storage.jobs.recent_for_user(ada.id)) == 2  # nothing started

    opened = await fake.wait_acked(await fake.press(ada, reply_id, "Type the region instead"))
    assert fake.modal(opened)["title"] == "Vary (Region)"
    message = await kaika.finished(await fake.submit_modal(ada, opened, {REGION: "left"}))
    region = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (region.kind, region.parent_job_id, region.params["box"]) == (
        JobKind.REGION,
        single_job,
        [0, 0, 50, 100],
    )
