"""🔬 Process in Discord: under a single image drawn from its prompt, it posts the image's diffusion as one
picture (a job of its own, owned by whoever pressed)."""

from __future__ import annotations

from pipeline.process import LABEL_HEIGHT, TITLE_HEIGHT, frame_size
from tests.fixtures.discord_helpers import FAST_STEPS, TOOL_LABELS, grid_of, job_id_of, png_size


async def test_process_posts_the_diffusion_of_the_image_as_its_own_job(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, _ = await grid_of(kaika, ada)
    single = await kaika.finished(await fake.press(ada, grid_id, "U2"))

    shown = await kaika.finished(await fake.press(bo, int(single["id"]), "Process"))
    assert "(diffusion process)" in shown["content"] and f"<@{bo.id}>" in shown["content"]
    assert fake.labels(int(shown["id"])) == TOOL_LABELS  # a sheet of frames: nothing to vary or edit
    [attachment] = shown["attachments"]
    # FAST_STEPS steps: the result and the three noised frames above, the three steps below.
    frame_width, frame_height = frame_size((64, 64))
    assert png_size(fake.files[int(shown["id"])][attachment["filename"]]) == (
        (FAST_STEPS + 1) * frame_width,
        2 * (TITLE_HEIGHT + frame_height + LABEL_HEIGHT),
    )
    record = await kaika.services.storage.jobs.get(job_id_of(kaika, int(shown["id"])))
    parent = job_id_of(kaika, int(single["id"]))
    assert (record.kind, record.parent_job_id, record.parent_image_index, record.owner_id) == (
        "process",
        parent,
        0,
        bo.id,
    )
