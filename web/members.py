"""Who is signed in: the member a request acts for, and the helpers handlers use to require one.

    member = require_member(request)    # anonymous: redirected to /signin (GET) or 401 (anything else)
    admin = require_admin(request)      # a member who is not an admin: 403
    requester = member.requester        # what the job service takes (service.admission.Requester)

Under `kaika web --local` every visitor is the command line's local user (an admin), as `kaika imagine` is.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from service.admission import Requester
from service.signin import is_web_admin, web_sessions_generation
from web.sessions import SESSION, Handler
from web.site import SERVICES, SETTINGS

SIGNIN_PATH = "/signin"
NOT_ADMIN = "Only Kaika's admins (ADMIN_USER_IDS) or members with Manage Server can open this page."


@dataclass(frozen=True)
class Member:
    """A signed-in member: their Discord user id (or `storage.LOCAL_USER_ID` under --local), name and
    whether they are one of Kaika's admins."""

    id: int
    name: str
    is_admin: bool = False

    @property
    def requester(self) -> Requester:
        return Requester(self.id, self.name, self.is_admin)


LOCAL_MEMBER = web.AppKey("local_member", Member)  # set under --local only
# The session key of the number its sign-in carries (`service.signin.web_sessions_generation`).
GENERATION = "gen"
MEMBER = web.RequestKey("member", Member)  # None for an anonymous visitor


@web.middleware
async def member_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who the request acts for, read once per request: whether a member is an admin is looked up each
    time, so a member who loses Manage Server (or leaves ADMIN_USER_IDS) loses the admin pages at once."""
    request[MEMBER] = await _member_of(request)  # type: ignore[assignment]
    return await handler(request)


async def _member_of(request: web.Request) -> Member | None:
    local = request.app.get(LOCAL_MEMBER)
    if local is not None:
        return local
    session = request[SESSION]
    user_id, name = session.get("uid"), session.get("name")
    if not isinstance(user_id, int) or not isinstance(name, str):
        return None
    storage = request.app[SERVICES].storage
    if session.get(GENERATION, 0) != await web_sessions_generation(storage, user_id):
        session.clear()  # ended by "Sign out everywhere": the browser gets an anonymous cookie back
        return None
    admin = await is_web_admin(storage, request.app[SETTINGS], user_id)
    return Member(user_id, name, is_admin=admin)


def signed_in(request: web.Request) -> Member | None:
    """The member this request acts for, or None for an anonymous visitor."""
    return request.get(MEMBER)


def require_member(request: web.Request) -> Member:
    """The signed-in member; an anonymous visitor is sent to the sign-in page (and back here after), or
    refused with 401 when the request is not a page load."""
    member = signed_in(request)
    if member is not None:
        return member
    if request.method == "GET":
        raise web.HTTPFound(URL(SIGNIN_PATH).with_query(next=request.rel_url.path_qs))
    raise web.HTTPUnauthorized(text="Sign in first: your session has ended.")


def require_admin(request: web.Request) -> Member:
    member = require_member(request)
    if not member.is_admin:
        raise web.HTTPForbidden(text=NOT_ADMIN)
    return member


async def sign_in(request: web.Request, user_id: int, name: str) -> None:
    """Start a member's session: a new session (and CSRF token), so nothing of the anonymous one carries
    over. Whether they are an admin, and whether the sign-in still counts, is decided on each request
    (`member_middleware`)."""
    generation = await web_sessions_generation(request.app[SERVICES].storage, user_id)
    session = request[SESSION]
    session.clear()
    session.set(uid=user_id, name=name, **{GENERATION: generation})


def sign_out(request: web.Request) -> None:
    request[SESSION].clear()


def local_path(target: str | None, default: str = "/") -> str:
    """`target` when it is a path on this site (where to go back after signing in), else `default`: never
    another site's address (`//evil.example`, `https://…`), so a crafted link cannot send members away."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
