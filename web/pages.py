"""Rendering a page: a template of web/templates/ with what every page gets.

    return render("gallery.html", request, {"jobs": jobs})

Every template may use `member` (the signed-in `Member`, or None), `csrf_token()` (for a form's hidden
`csrf_token` field), `local` (under `kaika web --local`) and `request`.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from web.members import LOCAL_MEMBER, signed_in
from web.sessions import SESSION, csrf_token


def page_context(request: web.Request) -> dict[str, Any]:
    has_session = SESSION in request  # not yet, for an error raised before the session was read
    return {
        "member": signed_in(request),
        "csrf_token": (lambda: csrf_token(request)) if has_session else (lambda: ""),
        "local": LOCAL_MEMBER in request.app,
        "request": request,
    }


def render(name: str, request: web.Request, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """The template web/templates/`name` with `context` over the page context."""
    return aiohttp_jinja2.render_template(name, request, {**page_context(request), **context}, status=status)
