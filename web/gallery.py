"""The gallery: the signed-in member's jobs newest first (filters, pages), a job's page with its lineage,
its stored PNGs (with their metadata), a video job's MP4 (its thumbnail is one of its PNGs) and delete. Who
may see what is `service.gallery`'s rule.

Templates get `video_files(job)` (`service.gallery.video_files`): None for a job of images."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from service.gallery import (
    NoSuchImage,
    gallery_page,
    lineage_of,
    stored_mp4,
    stored_png,
    video_files,
    viewable_job,
)
from service.readback import parameters_for, prompt_line, settings_lines
from storage.records import JobKind
from web.members import require_member
from web.pages import render
from web.site import SERVICES

JOB_PATH = "/jobs/{job_id}"
DEFAULT_MODEL = "default"  # the model filter's value for jobs of the default model


def add_gallery_routes(app: web.Application) -> None:
    app.router.add_get("/", gallery, name="gallery")
    app.router.add_get(JOB_PATH, job_page, name="job")
    app.router.add_get(JOB_PATH + "/images/{number:[0-9]+}.png", image, name="job_image")
    app.router.add_get(JOB_PATH + "/video.mp4", video, name="job_video")
    app.router.add_post(JOB_PATH + "/delete", delete, name="job_delete")
    aiohttp_jinja2.get_env(app).globals["video_files"] = video_files


def _page_number(value: str) -> int:
    return int(value) if value.isdecimal() and 0 < int(value) < 100_000 else 1


async def gallery(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    query = request.query
    model = query.get("model") or None  # "default": the default model's jobs; empty: every model's
    filters = {"kind": query.get("kind", ""), "model": model, "text": query.get("text", "")}
    page = await gallery_page(
        request.app[SERVICES].storage,
        member.requester,
        kind=filters["kind"],
        model="" if model == DEFAULT_MODEL else model,
        text=filters["text"],
        page=_page_number(query.get("page", "1")),
    )

    def page_url(number: int) -> str:
        kept = {key: value for key, value in query.items() if key != "page" and value != ""}
        return str(URL("/").with_query({**kept, "page": str(number)}))

    return render(
        "gallery.html",
        request,
        {
            "page": page,
            "filters": filters,
            "kinds": [kind.value for kind in JobKind],
            "prompt_line": prompt_line,
            "page_url": page_url,
            "deleted": query.get("deleted", ""),
        },
    )


async def job_page(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    storage = request.app[SERVICES].storage
    job = await viewable_job(storage, request.match_info["job_id"], member.requester)
    parameters = await parameters_for(storage, job)
    return render(
        "job.html",
        request,
        {
            "job": job,
            "prompt": prompt_line(job),
            "settings": settings_lines(parameters),
            "lineage": await lineage_of(storage, job, member.requester),
            "may_delete": member.is_admin or member.id == job.owner_id,
            "prompt_line": prompt_line,
        },
    )


async def image(request: web.Request) -> web.StreamResponse:
    """The stored PNG (its bytes as stored, metadata and all); `?download=1` saves it as a file."""
    member = require_member(request)
    storage = request.app[SERVICES].storage
    job = await viewable_job(storage, request.match_info["job_id"], member.requester)
    number = int(request.match_info["number"])
    try:
        data = await stored_png(storage, job, number)
    except NoSuchImage as error:
        raise web.HTTPNotFound(text=str(error)) from None
    return _stored_file(request, data, "image/png", f"kaika-{job.id}-{number}.png")


async def video(request: web.Request) -> web.StreamResponse:
    """A video job's MP4 as stored (its provenance in its metadata); `?download=1` saves it as a file."""
    member = require_member(request)
    storage = request.app[SERVICES].storage
    job = await viewable_job(storage, request.match_info["job_id"], member.requester)
    try:
        data = await stored_mp4(storage, job)
    except NoSuchImage as error:
        raise web.HTTPNotFound(text=str(error)) from None
    return _stored_file(request, data, "video/mp4", f"kaika-{job.id}.mp4")


def _stored_file(request: web.Request, data: bytes, content_type: str, filename: str) -> web.Response:
    """A stored file, or the byte range a browser asks for (a <video> seeks and loops by ranges; Safari plays
    nothing served without them)."""
    headers = {
        "Cache-Control": "private, max-age=86400",
        "Accept-Ranges": "bytes",
    }  # a stored file never changes
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    try:
        asked = request.http_range
    except ValueError:
        asked = slice(None, None)  # a Range header it cannot read: the whole file, as RFC 9110 allows
    if asked.start is None and asked.stop is None:
        return web.Response(body=data, content_type=content_type, headers=headers)
    start, stop, _ = asked.indices(len(data))
    if start >= stop:
        headers["Content-Range"] = f"bytes */{len(data)}"
        raise web.HTTPRequestRangeNotSatisfiable(headers=headers)
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    return web.Response(body=data[start:stop], status=206, content_type=content_type, headers=headers)


async def delete(request: web.Request) -> web.StreamResponse:
    """Delete a job as /delete does (its owner, or an admin); a job the member may not see is not there."""
    member = require_member(request)
    services = request.app[SERVICES]
    job = await viewable_job(services.storage, request.match_info["job_id"], member.requester)
    await services.jobs.delete(job.id, member.requester)
    raise web.HTTPFound(str(URL("/").with_query(deleted=job.id)))
