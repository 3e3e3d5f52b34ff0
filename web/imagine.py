"""Imagine in the browser: the prompt box, a job's live page with its buttons, and the region editor.

Everything goes through the job service as the bot's /imagine and buttons do (`JobService.parse_all_for`,
`imagine_all`, `press`, `press_drawn_region`, `offered_for`), so the syntax, the limits, the quota and the
refusals are the same, and the jobs are the signed-in member's (they show in Discord's /history too).

    GET  /imagine                          the prompt box
    POST /imagine                          start the prompt's jobs (303 to the job's page, or to theirs)
    GET  /imagine/jobs?ids=<job>,<job>…    several jobs of one prompt (--repeat, {a, b}), each as on its page
    GET  /imagine/<job>                    the job: live progress, then its grid or image and its buttons
    GET  /imagine/<job>/events             its progress as Server-Sent Events (web/live.py)
    GET  /imagine/<job>/grid.png           what Discord shows of it (the grid, the image enlarged, a video's
                                           first frame)
    POST /imagine/<job>/press              a button (`press` = "<action>:<index>"), 303 to the new job
    POST /imagine/remix                    Remix on or off (as 🖌 Remix)
    GET  /imagine/<job>/region/<n>         the region editor over image n
    POST /imagine/<job>/region/<n>         Vary (Region) of the painted mask (`mask`, a PNG; `prompt`)

Who sees a job is the gallery's rule (`service.gallery.may_view`): to anyone else it does not exist (404).
The stored images themselves are the gallery's (/jobs/<job>/images/<n>.png).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp_jinja2
from aiohttp import web

from pipeline.images import decode_image, display_grid, display_png, encode_png
from service.admission import Place
from service.defaults import remix_on
from service.errors import JobGone
from service.gallery import video_files, viewable_job
from service.jobs import ButtonAction, PendingJob, asked_edit
from service.readback import prompt_line
from service.signin import REGION_EDITOR_PATH
from storage.records import FrontEnd, JobRecord, JobStatus
from web.live import add_live_streams, new_feed, stream
from web.members import Member, require_member
from web.messages import error_message
from web.pages import page_context, render
from web.site import SERVICES

# Jobs one page of several shows at most (more than one prompt may start).
MOST_JOBS_SHOWN = 100
PROMPT_LIMIT = 6000  # characters of a prompt box; the service's own limits say more precise things
NO_SUCH_BUTTON = "Kaika has no such button."
REGION_NEEDS_EDITOR = "Vary (Region) asks which part to vary: open its region editor."


def add_imagine_routes(app: web.Application) -> None:
    add_live_streams(app)
    app.router.add_get("/imagine", imagine_page, name="imagine")
    app.router.add_post("/imagine", imagine)
    app.router.add_post("/imagine/remix", toggle_remix)
    app.router.add_get("/imagine/jobs", jobs_page, name="imagine_jobs")
    app.router.add_get("/imagine/{job_id}", job_page, name="imagine_job")
    app.router.add_get("/imagine/{job_id}/events", job_events)
    app.router.add_get("/imagine/{job_id}/grid.png", job_grid)
    app.router.add_post("/imagine/{job_id}/press", press)
    region = REGION_EDITOR_PATH.replace("{index}", r"{index:\d{1,2}}")  # where the bot links to
    app.router.add_get(region, region_editor, name="region_editor")
    app.router.add_post(region, vary_region)


# ---- the buttons of a finished job, as Discord shows them -------------------------------------------


@dataclass(frozen=True)
class Button:
    action: ButtonAction
    index: int
    label: str
    row: int

    @property
    def value(self) -> str:
        return f"{self.action.value}:{self.index}"

    @property
    def title(self) -> str:
        return TITLES.get(self.action, self.label)


# Discord's emoji as characters every font has (a browser without an emoji font shows the same).
REROLL_LABEL = "↻"
PAN_LABELS = (
    (ButtonAction.PAN_LEFT, "←"),
    (ButtonAction.PAN_RIGHT, "→"),
    (ButtonAction.PAN_UP, "↑"),
    (ButtonAction.PAN_DOWN, "↓"),
)
# What a button without words does, for its tooltip and screen readers.
TITLES = {
    ButtonAction.REROLL: "Re-roll: the same prompt with a new seed",
    ButtonAction.PAN_LEFT: "Pan left",
    ButtonAction.PAN_RIGHT: "Pan right",
    ButtonAction.PAN_UP: "Pan up",
    ButtonAction.PAN_DOWN: "Pan down",
    ButtonAction.ANIMATE_LOW: "A short video of this image, with little motion",
    ButtonAction.ANIMATE_HIGH: "A short video of this image, with much motion",
    ButtonAction.EXTEND: "A few seconds more of this video, from its last frame",
}


def job_buttons(job: JobRecord, offered: frozenset[ButtonAction]) -> list[list[Button]]:
    """The rows of buttons under a finished job, those its model serves (`JobService.offered_for`): a video's
    Extend; a grid's U, V, 🔄 and Enhance; a single image's vary, upscale, 🎞 Animate, edits and pans (as
    bot/views.py lays them out)."""
    count = len(job.images)
    if video_files(job) is not None:
        buttons = [Button(ButtonAction.EXTEND, 0, "Extend", 0)]
    elif count > 1:
        buttons = [Button(ButtonAction.UPSCALE, i, f"U{i + 1}", 0) for i in range(count)]
        buttons += [Button(ButtonAction.VARY, i, f"V{i + 1}", 1) for i in range(count)]
        buttons.append(Button(ButtonAction.REROLL, 0, REROLL_LABEL, 1))
        buttons += [Button(ButtonAction.ENHANCE, i, f"Enhance {i + 1}", 2) for i in range(count)]
    else:
        buttons = [
            Button(ButtonAction.VARY_SUBTLE, 0, "Vary (Subtle)", 0),
            Button(ButtonAction.VARY_STRONG, 0, "Vary (Strong)", 0),
            Button(ButtonAction.VARY_REGION, 0, "Vary (Region)", 0),
            Button(ButtonAction.UPSCALE_SUBTLE, 0, "Upscale (Subtle)", 1),
            Button(ButtonAction.UPSCALE_CREATIVE, 0, "Upscale (Creative)", 1),
            Button(ButtonAction.PROCESS, 0, "Process", 1),
            Button(ButtonAction.ANIMATE_LOW, 0, "Animate (Low motion)", 1),
            Button(ButtonAction.ANIMATE_HIGH, 0, "Animate (High motion)", 1),
            Button(ButtonAction.ZOOM_OUT_2X, 0, "Zoom Out 2x", 2),
            Button(ButtonAction.ZOOM_OUT_15X, 0, "Zoom Out 1.5x", 2),
            Button(ButtonAction.ZOOM_CUSTOM, 0, "Custom Zoom", 2),
            Button(ButtonAction.MAKE_SQUARE, 0, "Make Square", 2),
            *(Button(action, 0, label, 3) for action, label in PAN_LABELS),
        ]
    rows: dict[int, list[Button]] = {}
    for button in buttons:
        if button.action in offered:
            rows.setdefault(button.row, []).append(button)
    return [rows[row] for row in sorted(rows)]


# ---- whose jobs ----------------------------------------------------------------------------------


async def member_job(request: web.Request, member: Member) -> JobRecord:
    """The job the path names, when `member` may see it (`service.gallery.may_view`); 404 otherwise, never
    revealing that it exists."""
    return await viewable_job(request.app[SERVICES].storage, request.match_info["job_id"], member.requester)


def image_index(request: web.Request, job: JobRecord) -> int:
    index = int(request.match_info["index"])
    if not 0 <= index < len(job.images):
        raise JobGone()
    return index


def start(request: web.Request, pending: PendingJob) -> None:
    """Follow a job, its reports kept for the pages that show it (web/live.py)."""
    pending.start(new_feed(request.app, pending.job.id))


def started_response(request: web.Request, job_id: str) -> web.StreamResponse:
    """Where a started job is shown: its page (303), or its address as JSON for a script."""
    url = request.app.router["imagine_job"].url_for(job_id=job_id)
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"job": job_id, "url": str(url)})
    raise web.HTTPSeeOther(url)


# ---- pages ---------------------------------------------------------------------------------------


async def imagine_page(request: web.Request) -> web.StreamResponse:
    require_member(request)
    return render("imagine.html", request, {"prompt": "", "error": None, "limit": PROMPT_LIMIT})


async def imagine(request: web.Request) -> web.StreamResponse:
    """The prompt's jobs, as /imagine starts them; a refusal shows its message over the prompt, kept."""
    member = require_member(request)
    jobs = request.app[SERVICES].jobs
    form = await request.post()
    prompt = str(form.get("prompt", ""))[:PROMPT_LIMIT]
    picture = form.get("image")
    try:
        requests = await jobs.parse_all_for(member.id, prompt)
        image = None
        if isinstance(picture, web.FileField) and picture.filename:
            data = await asyncio.to_thread(picture.file.read)
            image = await jobs.check_upload(data, picture.filename)
        started = await jobs.imagine_all(
            member.requester, Place(None, None, FrontEnd.WEB), requests, image=image
        )
    except Exception as error:
        message = await error_message(request, error)
        if message is None:
            raise
        context = {"prompt": prompt, "error": message, "limit": PROMPT_LIMIT}
        return render("imagine.html", request, context, status=400)
    for pending in started:
        start(request, pending)
    if len(started) == 1:
        return started_response(request, started[0].job.id)
    # A page of their own to go to (POST/redirect/GET), so reloading it never sends the prompt again.
    ids = [pending.job.id for pending in started]
    url = request.app.router["imagine_jobs"].url_for().with_query(ids=",".join(ids))
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"jobs": ids, "url": str(url)})
    raise web.HTTPSeeOther(url)


async def job_page(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    job = await member_job(request, member)
    return render("imagine_jobs.html", request, {"jobs": [await _panel(request, member, job)], "title": None})


async def jobs_page(request: web.Request) -> web.StreamResponse:
    """The jobs `ids` names (those `member` may see: any other is as gone), each as on its own page."""
    member = require_member(request)
    storage = request.app[SERVICES].storage
    ids = [i for i in request.query.get("ids", "").split(",") if i][:MOST_JOBS_SHOWN]
    panels = []
    for job_id in dict.fromkeys(ids):
        try:
            job = await viewable_job(storage, job_id, member.requester)
        except JobGone:  # deleted since, or not theirs to see
            continue
        panels.append(await _panel(request, member, job))
    if not panels:
        raise JobGone()
    return render("imagine_jobs.html", request, {"jobs": panels, "title": None})


async def _panel(request: web.Request, member: Member, job: JobRecord) -> dict[str, object]:
    return {"job": job, "line": prompt_line(job), "result": await result_html(request, member, job)}


async def result_html(request: web.Request, member: Member, job: JobRecord) -> str:
    """A finished job's image and buttons (templates/imagine_result.html); empty while it runs."""
    if job.status is not JobStatus.DONE or not job.images:
        return ""
    services = request.app[SERVICES]
    defaults = await services.storage.users.defaults(member.id)
    remix = remix_on(defaults)
    context = {
        **page_context(request),
        "job": job,
        "rows": job_buttons(job, services.jobs.offered_for(job)),
        "remix": remix,
        "remix_prompt": prompt_line(job) if remix else "",
        "single": len(job.images) == 1,
    }
    template = aiohttp_jinja2.get_env(request.app).get_template("imagine_result.html")
    return template.render(context)


async def job_events(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    job = await member_job(request, member)
    return await stream(request, job, lambda done: result_html(request, member, done))


async def job_grid(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    job = await member_job(request, member)
    if not job.images:
        raise JobGone()
    storage = request.app[SERVICES].storage
    video = video_files(job)
    shown = [job.images[video.thumbnail - 1]] if video else job.images  # a video: its first frame
    stored = [await storage.images.get(image.storage_key) for image in shown]
    if len(stored) == 1:
        data = await asyncio.to_thread(display_png, stored[0])
    else:
        data = await asyncio.to_thread(lambda: encode_png(display_grid([decode_image(d) for d in stored])))
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


# ---- buttons -------------------------------------------------------------------------------------


def _pressed(value: str) -> tuple[ButtonAction, int]:
    action, _, index = value.partition(":")
    try:
        return ButtonAction(action), int(index or 0)
    except ValueError:
        raise web.HTTPBadRequest(text=NO_SUCH_BUTTON) from None


async def press(request: web.Request) -> web.StreamResponse:
    """A button of a finished job: the child job starts as the same button in Discord starts it. With Remix
    on, a button Remix acts on starts from the prompt as edited on the page."""
    member = require_member(request)
    job = await member_job(request, member)
    form = await request.post()
    action, index = _pressed(str(form.get("press", "")))
    if action is ButtonAction.VARY_REGION:
        raise web.HTTPBadRequest(text=REGION_NEEDS_EDITOR)
    jobs = request.app[SERVICES].jobs
    # The rules of the server the job was made in (owner-only buttons).
    place = Place(job.guild_id, None, FrontEnd.WEB)
    edit = asked_edit(action, str(form.get("factor", ""))) if action is ButtonAction.ZOOM_CUSTOM else None
    prompt = None
    if await jobs.remix_prompt(member.requester, place, action, job.id, index) is not None:
        prompt = str(form.get("prompt", "")).strip() or prompt_line(job)
    pending = await jobs.press(member.requester, place, action, job.id, index, prompt=prompt, edit=edit)
    start(request, pending)
    return started_response(request, pending.job.id)


async def toggle_remix(request: web.Request) -> web.StreamResponse:
    """🖌 Remix: on or off for this member, everywhere (as `/settings remix`); back to the page it was on."""
    member = require_member(request)
    await request.app[SERVICES].jobs.toggle_remix(member.id)
    form = await request.post()
    back = str(form.get("back", ""))
    raise web.HTTPSeeOther(back if back.startswith("/imagine/") else "/imagine")


# ---- the region editor ---------------------------------------------------------------------------


async def region_editor(request: web.Request) -> web.StreamResponse:
    """Brush, rectangle and lasso over image n of a job, with undo and an optional new prompt."""
    member = require_member(request)
    job = await member_job(request, member)
    index = image_index(request, job)
    jobs = request.app[SERVICES].jobs
    await jobs.check_press(
        member.requester, Place(job.guild_id, None, FrontEnd.WEB), ButtonAction.VARY_REGION, job.id, index
    )
    image = job.images[index]
    context = {"job": job, "index": index, "image": image, "line": prompt_line(job)}
    return render("editor.html", request, context)


async def vary_region(request: web.Request) -> web.StreamResponse:
    """Vary (Region) of the painted part (`mask`: a PNG, light or opaque where to vary), with the page's
    new prompt when one is given."""
    member = require_member(request)
    job = await member_job(request, member)
    index = image_index(request, job)
    form = await request.post()
    mask = form.get("mask")
    if not isinstance(mask, web.FileField):
        raise web.HTTPBadRequest(text="Paint or outline the part of the image to vary, then send it.")
    data = await asyncio.to_thread(mask.file.read)
    prompt = str(form.get("prompt", "")).strip() or None
    pending = await request.app[SERVICES].jobs.press_drawn_region(
        member.requester, Place(job.guild_id, None, FrontEnd.WEB), job.id, index, data, prompt=prompt
    )
    start(request, pending)
    return started_response(request, pending.job.id)
