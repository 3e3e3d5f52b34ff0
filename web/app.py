"""The web companion's application: `create_app(services, settings, cookie_secret=…)`.

It runs over the same `service.wiring.Services` the bot and the command line open; handlers reach them as
`request.app[SERVICES]`. Pages are Jinja2 templates in web/templates/ (aiohttp-jinja2), assets are served
from web/static/ by the package itself. Each area of the site adds its routes from its own module
(`add_…_routes(app)`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from service.errors import JobGone
from service.settings import Settings
from service.wiring import Services
from storage.errors import JobNotFound, NotAllowed, StorageUnavailable
from web.admin import add_admin_routes
from web.gallery import add_gallery_routes
from web.imagine import add_imagine_routes
from web.members import LOCAL_MEMBER, Member, member_middleware
from web.messages import error_message
from web.operations import add_operations_routes
from web.pages import render
from web.sessions import COOKIE_SECRET, SECURE_COOKIES, Handler, session_middleware
from web.signin import add_signin_routes
from web.site import SERVICES, SETTINGS, base_url

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# The largest request body: a region editor's mask or an image prompt, with room for the form around it.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def create_app(
    services: Services, settings: Settings, *, cookie_secret: bytes, local_member: Member | None = None
) -> web.Application:
    """The companion over `services`. With `local_member` (`kaika web --local`) every visitor is that member."""
    app = web.Application(
        middlewares=[error_pages, session_middleware, member_middleware, user_errors],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[SERVICES] = services
    app[SETTINGS] = settings
    app[COOKIE_SECRET] = cookie_secret
    app[SECURE_COOKIES] = base_url(settings).startswith("https://")
    if local_member is not None:
        app[LOCAL_MEMBER] = local_member
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_static("/static/", STATIC_DIR, name="static")
    add_signin_routes(app)
    add_gallery_routes(app)
    add_imagine_routes(app)
    add_admin_routes(app)
    add_operations_routes(app, services)  # /metrics, /healthz, /readyz: open, as a metrics port is
    return app


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors as pages for browsers (plain text for fetch() and other clients), keeping a session
    written on the way out (sign-out, a new CSRF token)."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error_response(request, error.status, error.text or error.reason, error)


@web.middleware
async def user_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An error a member caused (service.errors.USER_ERRORS) answers with its message as the web writes it
    (`web.messages.error_message`: members by name): 404 for a job
    that is not there, 403 for what they may not do, 503 while storage is away, 400 otherwise."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        message = await error_message(request, error)
        if message is None:
            raise
        raise _status_of(error)(text=message) from None


def _status_of(error: Exception) -> type[web.HTTPException]:
    if isinstance(error, JobGone | JobNotFound):
        return web.HTTPNotFound
    if isinstance(error, NotAllowed):
        return web.HTTPForbidden
    if isinstance(error, StorageUnavailable):
        return web.HTTPServiceUnavailable
    return web.HTTPBadRequest


def _error_response(
    request: web.Request, status: int, message: str, error: web.HTTPException
) -> web.Response:
    if "text/html" in request.headers.get("Accept", ""):
        response = render("error.html", request, {"status": status, "message": message}, status=status)
    else:
        response = web.Response(status=status, text=message)
    for cookie in error.cookies.values():
        response.cookies[cookie.key] = cookie
    return response
