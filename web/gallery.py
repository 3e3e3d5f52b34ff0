"""The gallery: the signed-in member's jobs, newest first."""

from __future__ import annotations

from aiohttp import web

from web.members import require_member
from web.pages import render
from web.site import SERVICES


def add_gallery_routes(app: web.Application) -> None:
    app.router.add_get("/", gallery_page, name="gallery")


async def gallery_page(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    jobs = await request.app[SERVICES].storage.jobs.recent_for_user(member.id, limit=48)
    return render("gallery.html", request, {"jobs": jobs})
