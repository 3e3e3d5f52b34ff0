"""`kaika web` stopped with jobs still queued or running: the next `kaika web` over the same DATA_DIR resumes
its own (their pages follow them live and end in the grid), and leaves the bot's to the bot."""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path
from typing import Any

from pipeline.executor.local import LocalExecutor
from pipeline.request import GenerationRequest
from service.admission import Place
from service.settings import Settings
from service.wiring import Services
from storage.records import FrontEnd, JobRecord, JobStatus
from tests.web.conftest import site_settings
from tests.web.helpers import OWNER, Site
from web.live import feeds
from web.server import open_app

# Enough steps that the job is still running when its server stops right after starting it.
LONG_PROMPT = "a red circle on a blue background --seed 3 --steps 60"


async def open_services(settings: Settings, tiny_engine: Any) -> Services:
    return await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=1))


async def left_unfinished(settings: Settings, tiny_engine: Any) -> tuple[str, JobRecord]:
    """A `kaika web` that starts a prompt from the browser and a bot that records a Discord job over the same
    DATA_DIR, both stopped before the jobs end: the web job's id and the Discord job."""
    first = await open_services(settings, tiny_engine)
    site = Site(first, settings)
    try:
        owner = await site.client(OWNER, app=await open_app(settings, first))
        response = await owner.post("/imagine", {"prompt": LONG_PROMPT})
        assert response.status == 303, await response.text()
        web_job_id = response.headers["Location"].removeprefix("/imagine/")
        request = GenerationRequest(prompt="a harbour at dusk", seed=5, width=64, height=64, steps=2)
        discord = await first.jobs.imagine(OWNER.requester, Place(5, 6, FrontEnd.DISCORD), request)
    finally:
        await site.close()
        await first.close()
    return web_job_id, discord.job


async def test_a_web_job_left_by_a_stopped_server_is_resumed_and_its_page_shows_the_grid(
    tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = site_settings(tiny_model_dir, tmp_path)
    web_job_id, discord_job = await left_unfinished(settings, tiny_engine)

    second = await open_services(settings, tiny_engine)
    site = Site(second, settings)
    try:
        left = await second.storage.jobs.get(web_job_id)
        assert left is not None and not left.status.finished, left  # stopped mid-job, not finished
        assert left.front_end is FrontEnd.WEB and left.channel_id is None
        assert discord_job.front_end is FrontEnd.DISCORD

        app = await open_app(settings, second)
        owner = await site.client(OWNER, app=app)  # the server starts: it resumes the web's jobs
        assert web_job_id in feeds(app)  # the reopened page follows the resumed job live, previews and all

        events = await owner.get(f"/imagine/{web_job_id}/events")
        assert events.status == 200
        stream = await asyncio.wait_for(events.text(), 120)
        assert "event: failed" not in stream, stream[-500:]
        assert '"preview":"data:image/png;base64,' in stream  # live progress with previews, from the feed
        result = json.loads(stream.split("event: finished\ndata: ", 1)[1].split("\n\n", 1)[0])["html"]
        assert f'src="/imagine/{web_job_id}/grid.png"' in result and ">U1<" in result

        await second.jobs.wait_idle()
        done = await second.storage.jobs.get(web_job_id)
        assert done is not None and done.status is JobStatus.DONE and len(done.images) == 4
        assert (done.owner_id, done.seed) == (OWNER.id, 3)
        page = html.unescape(await owner.get_page(f"/imagine/{web_job_id}"))
        assert f'src="/imagine/{web_job_id}/grid.png"' in page and ">V4<" in page
        grid = await owner.get(f"/imagine/{web_job_id}/grid.png")
        assert grid.status == 200 and grid.content_type == "image/png"

        # The bot's job is the bot's to resume (to its channel): the web neither ran nor failed it.
        still = await second.storage.jobs.get(discord_job.id)
        assert still is not None and still.status is JobStatus.QUEUED
        assert [job.id for job in await second.storage.jobs.unfinished()] == [discord_job.id]
    finally:
        await site.close()
        await second.close()


async def test_a_web_job_that_cannot_be_resumed_is_failed_with_the_reason_its_page_shows(
    tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = site_settings(tiny_model_dir, tmp_path)
    first = await open_services(settings, tiny_engine)
    site = Site(first, settings)
    try:
        grid = await site.imagine(OWNER, "a quiet harbour --seed 4 --steps 2")
        owner = await site.client(OWNER, app=await open_app(settings, first))
        response = await owner.post(f"/imagine/{grid.id}/press", {"press": "v:0"})
        assert response.status == 303, await response.text()
        vary_id = response.headers["Location"].removeprefix("/imagine/")
    finally:
        await site.close()
        await first.close()
    second = await open_services(settings, tiny_engine)
    site = Site(second, settings)
    try:
        left = await second.storage.jobs.get(vary_id)
        assert left is not None and not left.status.finished, left
        await second.storage.images.delete(grid.images[0].storage_key)  # V1's image went meanwhile

        owner = await site.client(OWNER, app=await open_app(settings, second))
        failed = await second.storage.jobs.get(vary_id)
        assert failed is not None and failed.status is JobStatus.FAILED
        assert "could not resume" in (failed.error or "")
        stream = await (await owner.get(f"/imagine/{vary_id}/events")).text()
        assert stream.startswith("event: failed") and "could not resume the job" in stream, stream
    finally:
        await site.close()
        await second.close()
