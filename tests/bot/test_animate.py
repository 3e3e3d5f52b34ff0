"""🎞 Animate and Extend in Discord, end to end through the fake Discord: the MP4 attachment decodes to the
video's frames, its thumbnail beside it, Extend under it; /imagine "… --video" posts the video of its image."""

from __future__ import annotations

from pipeline.video_files import decode_mp4, mp4_info
from tests.fixtures.discord_helpers import FAST_STEPS, TOOL_LABELS, grid_of, job_id_of, png_size

FRAMES = 4
ANIMATE_LABELS = ["Animate (Low motion)", "Animate (High motion)"]


async def test_animate_posts_an_mp4_that_decodes_to_its_frames_then_extend_makes_it_longer(
    start_kaika, tiny_video_engine
):
    kaika = await start_kaika(engine=tiny_video_engine, video_frames=FRAMES)
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    single = await kaika.finished(await fake.press(ada, grid_id, "U2"))
    labels = fake.labels(int(single["id"]))
    assert labels[labels.index("Process") + 1 : labels.index("Process") + 3] == ANIMATE_LABELS

    shown = await kaika.finished(await fake.press(ada, int(single["id"]), "Animate (High motion)"))

    assert "(video)" in shown["content"] and "🎞 Video" in shown["content"]
    assert fake.labels(int(shown["id"])) == ["Extend", *TOOL_LABELS]
    video_id = job_id_of(kaika, int(shown["id"]))
    files = fake.files[int(shown["id"])]
    assert sorted(a["filename"] for a in shown["attachments"]) == [
        f"kaika_{video_id}.mp4",
        f"kaika_{video_id}_thumbnail.png",
    ]
    mp4 = files[f"kaika_{video_id}.mp4"]
    assert len(decode_mp4(mp4)) == FRAMES
    assert mp4_info(mp4)["codec"] == "h264"
    assert png_size(files[f"kaika_{video_id}_thumbnail.png"]) == (64, 64)
    width, height = png_size(files["preview.png"])  # a progress edit showed the frames as they formed
    assert width == FRAMES * height
    record = await kaika.services.storage.jobs.get(video_id)
    assert (record.kind, record.parent_job_id, record.parent_image_index) == (
        "animate",
        job_id_of(kaika, int(single["id"])),
        0,
    )

    longer = await kaika.finished(await fake.press(ada, int(shown["id"]), "Extend"))
    longer_id = job_id_of(kaika, int(longer["id"]))
    assert "(extended video)" in longer["content"]
    assert len(decode_mp4(fake.files[int(longer["id"])][f"kaika_{longer_id}.mp4"])) == 2 * FRAMES - 1


async def test_imagine_with_video_posts_the_video_of_its_image(start_kaika, tiny_video_engine):
    kaika = await start_kaika(engine=tiny_video_engine, video_frames=FRAMES)
    fake = kaika.fake
    ada = fake.add_member("ada")
    shown = await kaika.finished(await kaika.imagine(ada, f"a blue square --video --steps {FAST_STEPS}"))
    video_id = job_id_of(kaika, int(shown["id"]))
    assert len(decode_mp4(fake.files[int(shown["id"])][f"kaika_{video_id}.mp4"])) == FRAMES
    record = await kaika.services.storage.jobs.get(video_id)
    parent = await kaika.services.storage.jobs.get(record.parent_job_id)
    assert record.kind == "animate" and parent.kind == "imagine" and parent.requester_id == ada.id


async def test_a_model_without_a_video_model_shows_no_animate_buttons(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    single = await kaika.finished(await fake.press(ada, grid_id, "U1"))
    assert not set(ANIMATE_LABELS) & set(fake.labels(int(single["id"])))
