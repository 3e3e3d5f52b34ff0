"""Signing in and out: the sign-in page, the one-time link the bot's /web sends, and Discord OAuth2.

A link opens a page whose button (pressed by the page's script at once) spends the link with a POST: the
GET alone never does, so a link preview fetched by a chat client cannot use the link up.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from service.signin import SIGNIN_LINK_PATH, end_web_sessions, redeem_signin_link
from web.discord_oauth import CALLBACK_PATH, DiscordSigninFailed, authorize_url, identify, oauth_configured
from web.members import LOCAL_MEMBER, local_path, require_member, sign_in, sign_out, signed_in
from web.pages import render
from web.sessions import SESSION
from web.site import SERVICES, SETTINGS, base_url

DISCORD_PATH = "/signin/discord"
SIGNOUT_EVERYWHERE_PATH = "/signout/everywhere"
SIGNED_OUT_EVERYWHERE = "You are signed out in every browser. Sign in again here when you want to."
NO_SIGNINS_LOCALLY = (
    "kaika web --local signs every visitor in as the local user: there are no sign-ins to end."
)
STALE_DISCORD_SIGNIN = "This Discord sign-in did not start in this browser, or was already finished; press Sign in with Discord again."


def add_signin_routes(app: web.Application) -> None:
    app.router.add_get("/signin", signin_page, name="signin")
    app.router.add_get(SIGNIN_LINK_PATH + "{token}", link_page, name="signin_link")
    app.router.add_post(SIGNIN_LINK_PATH + "{token}", use_link)
    app.router.add_get(DISCORD_PATH, discord_signin, name="signin_discord")
    app.router.add_get(CALLBACK_PATH, discord_callback, name="signin_discord_callback")
    app.router.add_post("/signout", signout, name="signout")
    app.router.add_post(SIGNOUT_EVERYWHERE_PATH, signout_everywhere, name="signout_everywhere")


async def signin_page(request: web.Request) -> web.StreamResponse:
    """The one page an anonymous visitor sees: how to sign in. A signed-in member goes on to `next`."""
    next_path = local_path(request.query.get("next"))
    if signed_in(request) is not None:
        raise web.HTTPFound(next_path)
    ended = SIGNED_OUT_EVERYWHERE if request.query.get("ended") == "everywhere" else ""
    return render(
        "signin.html",
        request,
        {"next": next_path, "discord": oauth_configured(request.app[SETTINGS]), "notice": ended},
    )


async def link_page(request: web.Request) -> web.StreamResponse:
    """The link's page; `next` (a path here) is where its button goes once signed in."""
    next_path = local_path(request.query.get("next"))
    return render("signin_link.html", request, {"token": request.match_info["token"], "next": next_path})


async def use_link(request: web.Request) -> web.StreamResponse:
    user_id, name = await redeem_signin_link(request.app[SERVICES].storage, request.match_info["token"])
    await sign_in(request, user_id, name)
    raise web.HTTPFound(local_path(request.query.get("next")))


async def discord_signin(request: web.Request) -> web.StreamResponse:
    """Off to Discord's consent page, with a `state` only this browser's session knows."""
    settings = request.app[SETTINGS]
    if not oauth_configured(settings):
        raise web.HTTPNotFound(
            text="Signing in with Discord is not set up here (DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET); "
            "type /web in Discord for a sign-in link."
        )
    state = secrets.token_urlsafe(24)
    request[SESSION].set(oauth_state=state, oauth_next=local_path(request.query.get("next")))
    raise web.HTTPFound(authorize_url(settings, base_url(settings) + CALLBACK_PATH, state))


async def discord_callback(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    session = request[SESSION]
    expected, next_path = session.get("oauth_state"), session.get("oauth_next", "/")
    state = request.query.get("state", "")
    if (
        not oauth_configured(settings)
        or not isinstance(expected, str)
        or not hmac.compare_digest(state, expected)
    ):
        raise web.HTTPBadRequest(text=STALE_DISCORD_SIGNIN)
    session.set(oauth_state=None)  # a state works once
    if "code" not in request.query:
        if request.query.get("error") == "access_denied":
            raise DiscordSigninFailed("You cancelled signing in with Discord; nothing was shared with Kaika.")
        raise DiscordSigninFailed("Discord did not sign you in; press Sign in with Discord again.")
    user = await identify(settings, request.query["code"], base_url(settings) + CALLBACK_PATH)
    await sign_in(request, user.id, user.name)
    raise web.HTTPFound(local_path(next_path if isinstance(next_path, str) else "/"))


async def signout(request: web.Request) -> web.StreamResponse:
    sign_out(request)
    raise web.HTTPFound("/signin")


async def signout_everywhere(request: web.Request) -> web.StreamResponse:
    """End every sign-in of the member, in every browser (a lost phone, a shared computer), this one too."""
    if request.app.get(LOCAL_MEMBER) is not None:
        raise web.HTTPBadRequest(text=NO_SIGNINS_LOCALLY)
    member = require_member(request)
    await end_web_sessions(request.app[SERVICES].storage, member.id, member.name)
    sign_out(request)
    raise web.HTTPFound("/signin?ended=everywhere")
