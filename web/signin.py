"""Signing in and out: the sign-in page, and (under --local) nobody needs it."""

from __future__ import annotations

from aiohttp import web

from web.members import local_path, sign_out, signed_in
from web.pages import render


def add_signin_routes(app: web.Application) -> None:
    app.router.add_get("/signin", signin_page, name="signin")
    app.router.add_post("/signout", signout, name="signout")


async def signin_page(request: web.Request) -> web.StreamResponse:
    """The one page an anonymous visitor sees: how to sign in. A signed-in member goes on to `next`."""
    next_path = local_path(request.query.get("next"))
    if signed_in(request) is not None:
        raise web.HTTPFound(next_path)
    return render("signin.html", request, {"next": next_path})


async def signout(request: web.Request) -> web.StreamResponse:
    sign_out(request)
    raise web.HTTPFound("/signin")
