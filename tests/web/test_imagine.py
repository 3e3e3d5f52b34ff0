"""Imagine in the browser: the prompt box, a job's live page and its buttons, and the region editor — the same
service calls as the bot's, so the same syntax, refusals, quota and ownership; another member's job is not
there at all."""

from __future__ import annotations

import asyncio
import html
import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline import editing
from pipeline.images import decode_image
from service.admission import Place
from service.signin import REGION_EDITOR_PATH, new_signin_link, web_base_url
from storage.records import JobKind, JobRecord, JobStatus
from tests.fixtures.reporters import outcome_of
from tests.web.helpers import OTHER, OWNER, Site, WebClient
from web.sessions import CSRF_REFUSAL

PROMPT = "a red circle on a blue background --seed 3"


def mask_png(size: tuple[int, int], box: tuple[int, int, int, int]) -> io.BytesIO:
    """What the editor sends: a transparent canvas, opaque where painted (a file to post)."""
    picture = Image.new("RGBA", size, (0, 0, 0, 0))
    picture.paste((255, 64, 96, 255), box)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    buffer.seek(0)
    return buffer


async def finished(site: Site, job_id: str) -> JobRecord:
    await site.services.jobs.wait_idle()
    job = await site.services.storage.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.DONE, job
    return job


async def started_job(response, site: Site) -> JobRecord:
    """The job a 303 from the companion points at, once it is done."""
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert location.startswith("/imagine/")
    return await finished(site, location.removeprefix("/imagine/"))


def site_base(site: Site) -> str:
    return web_base_url(site.settings)


async def press(client: WebClient, job: JobRecord, value: str, **fields: str):
    return await client.post(f"/imagine/{job.id}/press", {"press": value, **fields})


async def test_anonymous_visitors_are_sent_to_sign_in_and_cannot_imagine(site: Site) -> None:
    anonymous = await site.client()
    response = await anonymous.get("/imagine")
    assert response.status == 302 and response.headers["Location"].startswith("/signin?next=/imagine")
    assert (await anonymous.post("/imagine", {"prompt": PROMPT})).status == 401
    assert await site.services.storage.jobs.recent_for_user(OWNER.id) == []


async def test_a_prompt_from_the_browser_is_the_members_job_counted_as_theirs(site: Site) -> None:
    owner = await site.client(OWNER)
    page = await owner.get_page("/imagine")
    assert 'name="prompt"' in page and "csrf_token" in page
    job = await started_job(await owner.post("/imagine", {"prompt": PROMPT}), site)
    assert (job.kind, job.requester_id, job.owner_id, job.prompt, job.seed) == (
        JobKind.IMAGINE,
        OWNER.id,
        OWNER.id,
        "a red circle on a blue background",
        3,
    )
    assert len(job.images) == 4
    assert [j.id for j in await site.services.storage.jobs.recent_for_user(OWNER.id)] == [job.id]  # /history
    assert await site.services.storage.jobs.jobs_last_24h(OWNER.id) == 1  # the quota's count
    assert f'href="/imagine/{job.id}"' in await owner.get_page(f"/jobs/{job.id}")  # from the gallery
    page = html.unescape(await owner.get_page(f"/imagine/{job.id}"))
    assert f'src="/imagine/{job.id}/grid.png"' in page
    for label in ("U1", "U4", "V1", "V4", "↻"):
        assert f">{label}</button>" in page
    grid = await owner.get(f"/imagine/{job.id}/grid.png")
    assert grid.status == 200 and grid.content_type == "image/png"
    shown = Image.open(io.BytesIO(await grid.read()))
    assert shown.size[0] >= 2 * job.images[0].width  # a 2x2 grid


async def test_a_bad_prompt_is_refused_with_the_same_message_as_imagine_and_kept(site: Site) -> None:
    owner = await site.client(OWNER)
    prompt = "a fox --ar banana"
    with pytest.raises(Exception) as refused:
        site.services.jobs.parse(prompt)
    response = await owner.post("/imagine", {"prompt": prompt}, headers={"Accept": "text/html"})
    page = html.unescape(await response.text())
    assert response.status == 400
    assert str(refused.value) in page and ">a fox --ar banana</textarea>" in page
    empty = await owner.post("/imagine", {"prompt": "   "}, headers={"Accept": "text/html"})
    assert empty.status == 400 and "form-error" in await empty.text()
    assert await site.services.storage.jobs.recent_for_user(OWNER.id) == []


async def test_a_blocked_term_and_the_daily_quota_refuse_as_in_discord(site: Site) -> None:
    await site.services.storage.guilds.update(0, blocklist=["circle"], daily_quota=1)
    owner = await site.client(OWNER)
    blocked = await owner.post("/imagine", {"prompt": PROMPT})
    assert blocked.status == 400 and "blocked term 'circle'" in html.unescape(await blocked.text())
    await started_job(await owner.post("/imagine", {"prompt": "a blue square --seed 1"}), site)
    over = await owner.post("/imagine", {"prompt": "a blue square --seed 2"})
    assert over.status == 400 and "quota" in (await over.text()).lower()


async def test_every_post_needs_the_csrf_token(site: Site) -> None:
    job = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    refused = [
        await owner.post("/imagine", {"prompt": PROMPT}, csrf=False),
        await owner.post(f"/imagine/{job.id}/press", {"press": "u:0"}, csrf=False),
        await owner.post("/imagine/remix", csrf=False),
        await owner.post(
            f"/imagine/{job.id}/region/0", {"mask": mask_png((64, 64), (0, 0, 9, 9))}, csrf=False
        ),
    ]
    for response in refused:
        assert response.status == 403 and CSRF_REFUSAL in await response.text()
    assert [j.id for j in await site.services.storage.jobs.recent_for_user(OWNER.id)] == [job.id]


async def test_progress_streams_as_server_sent_events_until_the_grid(site: Site) -> None:
    owner = await site.client(OWNER)
    response = await owner.post("/imagine", {"prompt": "a blue square --seed 4 --steps 6"})
    job_id = response.headers["Location"].removeprefix("/imagine/")
    events = await owner.get(f"/imagine/{job_id}/events")
    assert events.status == 200 and events.content_type == "text/event-stream"
    stream = await events.text()
    names = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    assert names[-1] == "finished" and "progress" in names
    steps = [
        json.loads(block.split("data: ", 1)[1])
        for block in stream.split("\n\n")
        if block.startswith("event: progress")
    ]
    assert steps[-1]["total"] == 6 and 0 <= steps[-1]["percent"] <= 100
    result = json.loads(stream.split("event: finished\ndata: ", 1)[1].split("\n\n", 1)[0])["html"]
    assert (
        f'src="/imagine/{job_id}/grid.png"' in result and 'value="u:0"' in result and 'value="v:3"' in result
    )
    # A reload after the end is told the outcome at once.
    again = await (await owner.get(f"/imagine/{job_id}/events")).text()
    assert again.startswith("event: finished")


async def test_a_job_from_discord_is_followed_from_storage(site: Site) -> None:
    """A job this process does not follow (started by the bot) still ends in its grid on the page."""
    jobs = site.services.jobs
    pending = await jobs.imagine(OWNER.requester, Place(5, 6), await jobs.parse_for(OWNER.id, PROMPT))
    owner = await site.client(OWNER)
    page = await owner.get_page(f"/imagine/{pending.job.id}")
    assert f'data-events="/imagine/{pending.job.id}/events"' in page
    events = await owner.get(f"/imagine/{pending.job.id}/events")
    await outcome_of(pending)
    stream = await events.text()
    assert stream.startswith("event: waiting") and "event: finished" in stream


async def test_u1_and_v1_start_the_same_jobs_as_the_discord_buttons(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    upscale = await started_job(await press(owner, grid, "u:0"), site)
    assert (upscale.kind, upscale.parent_job_id, upscale.parent_image_index) == (JobKind.UPSCALE, grid.id, 0)
    assert len(upscale.images) == 1
    single = html.unescape(await owner.get_page(f"/imagine/{upscale.id}"))
    for label in ("Vary (Subtle)", "Vary (Strong)", "Upscale (Subtle)", "Zoom Out 2x", "←"):
        assert f">{label}</" in single
    assert f'href="/imagine/{upscale.id}/region/0"' in single  # Vary (Region) opens the editor
    assert "Make Square" not in single  # a square image
    variation = await started_job(await press(owner, grid, "v:0"), site)
    assert (variation.kind, variation.parent_job_id, variation.parent_image_index) == (
        JobKind.VARIATION,
        grid.id,
        0,
    )
    assert variation.requester_id == OWNER.id and len(variation.images) == 4
    reroll = await started_job(await press(owner, grid, "r:0"), site)
    assert reroll.kind == JobKind.REROLL and reroll.seed != grid.seed
    zoom = await started_job(await press(owner, upscale, "zc:0", factor="1.5"), site)
    assert zoom.kind == JobKind.ZOOM and zoom.params["factor"] == 1.5


async def test_buttons_that_cannot_be_pressed_say_why(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    for value, message in [
        ("nope:0", "Kaika has no such button."),
        ("u:7", "This job no longer exists."),
        ("vr:0", "open its region editor"),
    ]:
        response = await press(owner, grid, value)
        assert response.status in (400, 404) and message in await response.text()
    upscale = await started_job(await press(owner, grid, "u:1"), site)
    bad_zoom = await press(owner, upscale, "zc:0", factor="3")
    assert bad_zoom.status == 400 and "The zoom factor must be from 1 to 2 (got 3)." in await bad_zoom.text()
    assert len(await site.services.storage.jobs.recent_for_user(OWNER.id)) == 2


async def test_remix_on_starts_a_button_from_the_prompt_edited_on_the_page(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    assert "Remix: prompt and flags" not in await owner.get_page(f"/imagine/{grid.id}")
    toggled = await owner.post("/imagine/remix", {"back": f"/imagine/{grid.id}"})
    assert toggled.status == 303 and toggled.headers["Location"] == f"/imagine/{grid.id}"
    page = html.unescape(await owner.get_page(f"/imagine/{grid.id}"))
    assert ">Remix on</button>" in page and "a red circle on a blue background --seed 3</textarea>" in page
    remix = await started_job(await press(owner, grid, "v:1", prompt="a green triangle"), site)
    assert (remix.kind, remix.prompt, remix.parent_image_index) == (JobKind.REMIX, "a green triangle", 1)
    upscale = await started_job(await press(owner, grid, "u:1", prompt="ignored by U"), site)
    assert upscale.kind == JobKind.UPSCALE and upscale.prompt == grid.prompt


async def test_another_members_job_is_not_there_for_them(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    other = await site.client(OTHER)
    for path in (
        f"/imagine/{grid.id}",
        f"/imagine/{grid.id}/events",
        f"/imagine/{grid.id}/grid.png",
        f"/imagine/{grid.id}/region/0",
    ):
        response = await other.get(path)
        assert response.status == 404 and "This job no longer exists." in await response.text(), path
    assert (await press(other, grid, "u:0")).status == 404
    drawn = await other.post(f"/imagine/{grid.id}/region/0", {"mask": mask_png((64, 64), (0, 0, 9, 9))})
    assert drawn.status == 404
    assert await site.services.storage.jobs.recent_for_user(OTHER.id) == []


async def test_a_member_who_pressed_anothers_image_is_refused_where_only_owners_may_press(site: Site) -> None:
    """OTHER upscaled OWNER's image in a server (the image stays OWNER's); where only owners may press
    buttons, the web refuses OTHER that image's buttons with the service's own message."""
    jobs = site.services.jobs
    server = Place(5, 6)
    grid = await outcome_of(
        await jobs.imagine(OWNER.requester, server, await jobs.parse_for(OWNER.id, PROMPT))
    )
    upscale = await outcome_of(await jobs.press(OTHER.requester, server, "u", grid.job.id, 0))
    assert (upscale.job.owner_id, upscale.job.requester_id) == (OWNER.id, OTHER.id)
    await site.services.storage.guilds.update(5, button_policy="owner")
    other = await site.client(OTHER)
    await other.get_page(f"/imagine/{upscale.job.id}")  # theirs to see: they asked for it
    refused = await press(other, upscale.job, "vs:0")
    # The owner by their name, never as the raw Discord mention the bot writes.
    assert refused.status == 403 and await refused.text() == (
        "Only the owner of this image, Ada, can use its buttons in this server."
    )
    editor = await other.get_page(f"/imagine/{upscale.job.id}/region/0", status=403)
    assert "Only the owner of this image, Ada, can use" in html.unescape(editor) and "&lt;@" not in editor
    owner = await site.client(OWNER)
    allowed = await started_job(await press(owner, upscale.job, "vs:0"), site)
    assert allowed.kind == JobKind.VARIATION


async def test_the_region_editor_varies_only_the_painted_part(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    upscale = await started_job(await press(owner, grid, "u:2"), site)
    page = await owner.get_page(f"/imagine/{upscale.id}/region/0")
    assert "<canvas" in page and 'data-tool="lasso"' in page and 'data-command="undo"' in page
    assert f'src="/jobs/{upscale.id}/images/1.png"' in page
    drawn = mask_png((640, 640), (0, 0, 320, 640))  # the left half, painted at the editor's size
    response = await owner.client.post(
        f"/imagine/{upscale.id}/region/0",
        data={"mask": drawn, "prompt": "a yellow star"},
        headers={"X-CSRF-Token": owner.csrf, "Accept": "application/json"},
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    region = await finished(site, answer["job"])
    assert answer["url"] == f"/imagine/{region.id}"
    assert (region.kind, region.parent_job_id, region.prompt) == (JobKind.REGION, upscale.id, "a yellow star")
    source = np.asarray(decode_image(await site.services.storage.images.get(upscale.images[0].storage_key)))
    feather = editing.feather_width(64, 64)
    for image in region.images:
        pixels = np.asarray(decode_image(await site.services.storage.images.get(image.storage_key)))
        assert (pixels[:, 32 + feather :] == source[:, 32 + feather :]).all()  # the right half, kept
        assert (pixels[:, :32] != source[:, :32]).any()


async def test_an_empty_or_missing_mask_is_refused_with_what_to_do(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    owner = await site.client(OWNER)
    empty = await owner.post(f"/imagine/{grid.id}/region/0", {"mask": mask_png((64, 64), (0, 0, 0, 0))})
    assert empty.status == 400 and editing.EMPTY_DRAWN_MASK in await empty.text()
    missing = await owner.post(f"/imagine/{grid.id}/region/0", {"prompt": "x"})
    assert missing.status == 400 and "Paint or outline" in await missing.text()
    assert (await owner.get(f"/imagine/{grid.id}/region/4")).status == 404
    assert await site.services.storage.uploads.count_for(OWNER.id) == 0


async def test_the_bots_editor_link_signs_the_member_in_and_opens_the_editor(site: Site) -> None:
    grid = await site.imagine(OWNER, PROMPT)
    editor = REGION_EDITOR_PATH.format(job_id=grid.id, index=1)
    link = await new_signin_link(site.services.storage, site.settings, OWNER.id, OWNER.name, then=editor)
    visitor = await site.client()
    path = link.url.removeprefix(site_base(site))
    page = html.unescape(await visitor.get_page(path))
    assert f'?next={editor}"' in page  # its button keeps where to go
    signed_in = await visitor.post(path)
    assert signed_in.status == 302 and signed_in.headers["Location"] == editor
    assert "<canvas" in await visitor.get_page(editor)
    elsewhere = await new_signin_link(
        site.services.storage, site.settings, OWNER.id, OWNER.name, then="https://evil.example/"
    )
    response = await (await site.client()).post(elsewhere.url.removeprefix(site_base(site)))
    assert response.status == 302 and response.headers["Location"] == "/"  # never another site


async def test_a_prompt_of_several_jobs_shows_each_following_its_own_progress(site: Site) -> None:
    owner = await site.client(OWNER)
    response = await owner.post("/imagine", {"prompt": "a {red, blue} square --seed 2"})
    # POST/redirect/GET: the jobs' own page, so reloading it shows them again instead of re-posting the prompt.
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    jobs = await site.services.storage.jobs.recent_for_user(OWNER.id)
    assert sorted(job.prompt for job in jobs) == ["a blue square", "a red square"]
    assert location == "/imagine/jobs?ids=" + ",".join(job.id for job in reversed(jobs))
    page = await owner.get_page(location)
    for job in jobs:
        assert f'data-job-id="{job.id}"' in page
        assert f'data-events="/imagine/{job.id}/events"' in page or job.status.finished
    await site.services.jobs.wait_idle()
    reloaded = html.unescape(await owner.get_page(location))
    assert (
        reloaded.count('src="/imagine/') == 2 and "a red square" in reloaded and "a blue square" in reloaded
    )
    assert len(await site.services.storage.jobs.recent_for_user(OWNER.id)) == 2  # nothing started again

    # Another member is shown none of them (as if they were gone); a job deleted since is left out.
    other = await site.client(OTHER)
    refused = await other.get_page(location, status=404)
    assert "This job no longer exists." in refused and "square" not in refused
    await owner.post(f"/jobs/{jobs[0].id}/delete")
    remaining = await owner.get_page(location)
    assert f'data-job-id="{jobs[1].id}"' in remaining and f'data-job-id="{jobs[0].id}"' not in remaining


async def test_a_prompt_of_several_jobs_answers_a_script_with_their_page(site: Site) -> None:
    owner = await site.client(OWNER)
    response = await owner.post(
        "/imagine", {"prompt": "a {red, blue} square --seed 2"}, headers={"Accept": "application/json"}
    )
    assert response.status == 200
    answer = await response.json()
    jobs = await site.services.storage.jobs.recent_for_user(OWNER.id)
    assert sorted(answer["jobs"]) == sorted(job.id for job in jobs) and len(jobs) == 2
    assert answer["url"] == "/imagine/jobs?ids=" + ",".join(answer["jobs"])
    await site.services.jobs.wait_idle()


async def test_a_job_deleted_while_its_page_follows_it_ends_with_the_reason(site: Site) -> None:
    owner = await site.client(OWNER)
    response = await owner.post("/imagine", {"prompt": "a blue square --seed 4 --steps 100"})
    job_id = response.headers["Location"].removeprefix("/imagine/")
    events = await owner.get(f"/imagine/{job_id}/events")
    assert events.status == 200
    await site.services.jobs.delete(job_id, OWNER.requester)
    stream = await events.text()
    assert stream.rstrip().endswith('event: failed\ndata: {"message":"This job was deleted."}'), stream[-300:]
    assert (await owner.get(f"/imagine/{job_id}")).status == 404  # and then it is gone


async def test_an_open_stream_never_holds_up_stopping_the_server(site: Site) -> None:
    """A page left open on a job the server follows from storage: stopping the server ends its stream at once
    (the browser reconnects by itself) instead of waiting for the job."""
    jobs = site.services.jobs
    pending = await jobs.imagine(OWNER.requester, Place(5, 6), await jobs.parse_for(OWNER.id, PROMPT))
    owner = await site.client(OWNER)
    events = await owner.get(f"/imagine/{pending.job.id}/events")
    assert await events.content.readline() == b"event: waiting\n"
    loop = asyncio.get_running_loop()
    began = loop.time()
    await owner.client.server.close()  # the browser stays connected
    assert loop.time() - began < 5
    assert await events.content.read() == b"data: {}\n\n"  # the rest of that event, and the stream ended
    await outcome_of(pending)
