"""Video jobs in the web companion: 🎞 Animate pressed on a single image's page makes a video job whose live page
ends with the video; the gallery card shows its thumbnail, the job page plays its MP4 (served as video/mp4 with
its provenance), and another member gets 404 for the MP4 and the thumbnail as for any job of the owner."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.executor.local import LocalExecutor
from pipeline.images import read_png_metadata
from pipeline.video_files import mp4_info
from service.jobs import ButtonAction
from service.wiring import Services
from storage.records import JobRecord, JobStatus
from tests.web.conftest import site_settings
from tests.web.helpers import OTHER, OWNER, Site, WebClient

FRAMES = 4
GONE = "This job no longer exists."
PROMPT = "a red circle on a blue background --seed 3 --steps 2"


@pytest.fixture
async def video_site(tiny_video_engine: Any, tiny_model_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    """The companion over services whose model animates (the tiny motion adapter), 4 frames a video, with a
    preview every step."""
    settings = site_settings(tiny_model_dir, tmp_path, video_frames=FRAMES)
    services = await Services.open(settings, LocalExecutor({None: tiny_video_engine}, preview_every=1))
    site = Site(services, settings)
    yield site
    await site.close()
    await services.close()


def events_of(stream: str) -> list[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of a finished stream, as (name, data)."""
    events = []
    for block in stream.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def a_single_image(site: Site) -> JobRecord:
    grid = await site.imagine(OWNER, PROMPT)
    return await site.press(OWNER, ButtonAction.UPSCALE, grid, 0)


async def animate_from_the_page(site: Site, owner: WebClient, single: JobRecord) -> tuple[str, list[Any]]:
    """Press 🎞 Animate (High motion) on the single image's live page; the new job's id and its page's events."""
    page = html.unescape(await owner.get_page(f"/imagine/{single.id}"))
    value = f"{ButtonAction.ANIMATE_HIGH.value}:0"
    assert f'value="{value}"' in page and "Animate (Low motion)" in page and "Animate (High motion)" in page
    pressed = await owner.post(f"/imagine/{single.id}/press", {"press": value})
    assert pressed.status == 303, await pressed.text()
    video_id = pressed.headers["Location"].rsplit("/", 1)[-1]
    stream = await owner.get(f"/imagine/{video_id}/events")
    return video_id, events_of(await stream.text())


async def test_animate_pressed_on_the_page_ends_with_a_video_that_plays_its_frames(video_site: Site) -> None:
    single = await a_single_image(video_site)
    owner = await video_site.client(OWNER)

    video_id, events = await animate_from_the_page(video_site, owner, single)

    names = [name for name, _ in events]
    assert names[-1] == "finished", events[-1]
    previews = [data["preview"] for name, data in events if name == "progress" and data["preview"]]
    assert previews, "the live page was shown no frame strip while the video formed"
    result = events[-1][1]["html"]
    assert f'<video class="video" src="/jobs/{video_id}/video.mp4"' in result
    assert f'poster="/jobs/{video_id}/images/2.png"' in result
    assert "controls loop muted playsinline" in result
    assert f'value="{ButtonAction.EXTEND.value}:0"' in result  # a video's one button
    assert (
        f'value="{ButtonAction.UPSCALE.value}:' not in result
        and f'value="{ButtonAction.VARY.value}:' not in result
    )
    assert "Animate (" not in result

    job = await video_site.services.storage.jobs.get(video_id)
    assert job is not None and job.status is JobStatus.DONE and job.kind == "animate"
    page = await owner.get_page(f"/imagine/{video_id}")  # the live page opened once it is done
    source = re.search(r'<video class="video" src="([^"]+)"', page)
    assert source is not None
    served = await owner.get(source.group(1))
    assert served.status == 200 and served.content_type == "video/mp4"
    mp4 = await served.read()
    info = mp4_info(mp4)
    assert info["frames"] == FRAMES and info["codec"] == "h264"
    assert info["provenance"]["job_id"] == video_id and info["provenance"]["prompt"].startswith(
        "a red circle"
    )
    assert mp4 == await video_site.services.storage.images.get(job.images[0].storage_key)  # as stored

    extended = await owner.post(f"/imagine/{video_id}/press", {"press": f"{ButtonAction.EXTEND.value}:0"})
    assert extended.status == 303, await extended.text()
    longer_id = extended.headers["Location"].rsplit("/", 1)[-1]
    events = events_of(await (await owner.get(f"/imagine/{longer_id}/events")).text())
    assert events[-1][0] == "finished" and f"/jobs/{longer_id}/video.mp4" in events[-1][1]["html"]
    longer = await owner.get(f"/jobs/{longer_id}/video.mp4")
    assert mp4_info(await longer.read())["frames"] == 2 * FRAMES - 1  # its last frame shown once


async def test_a_video_jobs_page_gallery_card_and_files(video_site: Site) -> None:
    single = await a_single_image(video_site)
    video = await video_site.press(OWNER, ButtonAction.ANIMATE_LOW, single, 0)
    owner, other = await video_site.client(OWNER), await video_site.client(OTHER)

    gallery = await owner.get_page("/")
    card = gallery[gallery.index(f'data-job-id="{video.id}"') :]
    card = card[: card.index("</article>")]
    assert f'src="/jobs/{video.id}/images/2.png"' in card and "video" in card
    assert "images/1.png" not in card  # never the MP4 as an image

    page = await owner.get_page(f"/jobs/{video.id}")
    assert f'<video src="/jobs/{video.id}/video.mp4" poster="/jobs/{video.id}/images/2.png"' in page
    assert "controls loop muted playsinline" in page
    assert f'href="/jobs/{video.id}/video.mp4?download=1"' in page

    download = await owner.get(f"/jobs/{video.id}/video.mp4?download=1")
    assert download.status == 200 and download.content_type == "video/mp4"
    assert download.headers["Content-Disposition"] == f'attachment; filename="kaika-{video.id}.mp4"'
    mp4 = await download.read()
    assert mp4_info(mp4)["frames"] == FRAMES and download.headers["Accept-Ranges"] == "bytes"
    # A <video> seeks and loops by byte ranges.
    first = await owner.get(f"/jobs/{video.id}/video.mp4", headers={"Range": "bytes=0-99"})
    assert first.status == 206 and await first.read() == mp4[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(mp4)}"
    last = await owner.get(f"/jobs/{video.id}/video.mp4", headers={"Range": "bytes=-50"})
    assert last.status == 206 and await last.read() == mp4[-50:]
    assert last.headers["Content-Range"] == f"bytes {len(mp4) - 50}-{len(mp4) - 1}/{len(mp4)}"
    beyond = await owner.get(f"/jobs/{video.id}/video.mp4", headers={"Range": f"bytes={len(mp4)}-"})
    assert beyond.status == 416
    unreadable = await owner.get(f"/jobs/{video.id}/video.mp4", headers={"Range": "bytes=0-1,5-6"})
    assert unreadable.status == 200 and await unreadable.read() == mp4
    thumbnail = await owner.get(f"/jobs/{video.id}/images/2.png")
    assert thumbnail.status == 200 and thumbnail.content_type == "image/png"
    assert "a red circle" in str(read_png_metadata(await thumbnail.read()))
    grid = await owner.get(f"/imagine/{video.id}/grid.png")  # what Discord shows: the first frame
    assert grid.status == 200 and grid.content_type == "image/png"

    as_png = await owner.get(f"/jobs/{video.id}/images/1.png")  # the MP4 is never served as an image
    assert as_png.status == 404 and "is its video (an MP4), not a PNG image" in await as_png.text()
    for path in (
        f"/jobs/{video.id}/video.mp4",
        f"/jobs/{video.id}/video.mp4?download=1",
        f"/jobs/{video.id}/images/2.png",
        f"/imagine/{video.id}/grid.png",
    ):
        refused = await other.get(path)
        assert refused.status == 404 and await refused.text() == GONE, path

    not_video = await owner.get(f"/jobs/{single.id}/video.mp4")
    assert not_video.status == 404 and f"Job {single.id} is not a video" in await not_video.text()


async def test_a_video_prompt_from_the_imagine_page_ends_with_its_video(video_site: Site) -> None:
    owner = await video_site.client(OWNER)
    started = await owner.post("/imagine", {"prompt": f"{PROMPT} --video"})
    assert started.status == 303, await started.text()
    image_id = started.headers["Location"].rsplit("/", 1)[-1]

    events = events_of(await (await owner.get(f"/imagine/{image_id}/events")).text())

    assert events[-1][0] == "finished", events[-1]
    children = await video_site.services.storage.jobs.children(image_id)
    assert [child.kind for child in children] == ["animate"]
    result = events[-1][1]["html"]
    assert f'src="/jobs/{children[0].id}/video.mp4"' in result  # the video, not the image it started from
    served = await owner.get(f"/jobs/{children[0].id}/video.mp4")
    assert served.content_type == "video/mp4" and mp4_info(await served.read())["frames"] == FRAMES
