"""/imagine end to end: the real bot, the tiny model and the fake Discord."""

from __future__ import annotations

from bot.progress import PREVIEW_MIN_SIDE
from testkit.fake_discord import EPHEMERAL_FLAG
from tests.fixtures.discord_helpers import GRID_LABELS, png_size


async def test_imagine_defers_shows_progress_and_posts_a_grid_with_buttons(start_kaika):
    kaika = await start_kaika(progress_edit_interval=0.05)
    fake = kaika.fake
    ada = fake.add_member("ada")

    # Enough steps that the run outlasts several edit intervals, however fast the machine.
    interaction = await kaika.imagine(ada, "a red circle --steps 40 --seed 7")
    await fake.wait_acked(interaction)
    assert interaction.response_type == 5 and not interaction.ephemeral
    assert interaction.ack_seconds < 3

    message = await kaika.finished(interaction)
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert f"<@{ada.id}>" in message["content"] and "a red circle" in message["content"]
    assert not message["flags"] & EPHEMERAL_FLAG
    [attachment] = message["attachments"]
    grid = fake.files[int(message["id"])][attachment["filename"]]
    assert png_size(grid) == (512, 512)  # 2x2 of the tiny model's 64x64 images, each enlarged to 256

    versions = [v["content"] for v in fake.message_versions[int(message["id"])]]
    assert any("Waiting to start (position 1)" in v or "%" in v for v in versions[:-1])
    assert any("█" in v or "░" in v for v in versions), versions
    previews = [a for v in fake.message_versions[int(message["id"])][:-1] for a in v["attachments"]]
    assert previews and all(a["filename"] == "preview.png" for a in previews)
    # The executor's preview is at latent resolution (16x16 for four 64x64 images): shown enlarged.
    assert png_size(fake.files[int(message["id"])]["preview.png"]) == (PREVIEW_MIN_SIDE, PREVIEW_MIN_SIDE)
    # Edits are throttled: at most one progress edit per 0.05 s and per step, plus the queue position and
    # the result (how many steps fit in one interval depends on the machine's load).
    edits = fake.calls_to("PATCH", r"/messages/@original$")
    assert len(edits) <= 40 + 2
    assert len(edits) - 2 <= (edits[-1].at - edits[0].at) / 0.05 + 1
    job_id = fake.custom_ids(int(message["id"]))[0].split(":")[2]
    job = await kaika.services.storage.jobs.get(job_id)
    assert job.status == "done" and job.owner_id == ada.id and job.seed == 7 and len(job.images) == 4
    assert job.message_id == int(message["id"])
