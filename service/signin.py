"""Signing in to the web companion, for every front end: the bot's /web link, and who is an admin there.

A sign-in link carries a random token (256 bits) that only this link knows: storage keeps its SHA-256, so
neither a database dump nor a log can be turned back into a working link. It works once (claiming it is
one atomic update), for LINK_LIFETIME, and survives restarts of the bot and the companion alike.

Admins of the web companion are ADMIN_USER_IDS and the members the bot last saw with Manage Server in one
of its servers (`note_server_manager`, called by the bot as members use it), the bot's own rule.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from service.errors import UserError
from service.settings import Settings
from storage import Storage

LINK_LIFETIME = timedelta(minutes=10)
SIGNIN_LINK_PATH = "/signin/link/"  # the web companion's page for a link: SIGNIN_LINK_PATH + token
# The web companion's region editor over image `index` of a job (where the bot's Vary (Region) links to).
REGION_EDITOR_PATH = "/imagine/{job_id}/region/{index}"
DEFAULT_WEB_BASE_URL = "http://127.0.0.1:8080"


class SigninLinkRefused(UserError):
    """A sign-in link that cannot sign anyone in: unknown, already used, or expired."""


UNKNOWN_LINK = "This is not a Kaika sign-in link (it may be cut short); type /web in Discord for a new one."
USED_LINK = (
    "This sign-in link has already been used; each link works once. Type /web in Discord for a new one."
)
EXPIRED_LINK = (
    "This sign-in link has expired (links work for {minutes} minutes); type /web in Discord for a new one."
)


@dataclass(frozen=True)
class SigninLink:
    url: str
    minutes: int


def web_base_url(settings: Settings) -> str:
    """Where members reach the web companion (WEB_BASE_URL), without a trailing slash."""
    return (settings.web_base_url or DEFAULT_WEB_BASE_URL).rstrip("/")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_signin_link(
    storage: Storage,
    settings: Settings,
    user_id: int,
    name: str,
    lifetime: timedelta = LINK_LIFETIME,
    *,
    then: str | None = None,
) -> SigninLink:
    """A one-time link that signs `user_id` (shown as `name`) in to the web companion, then opens the
    companion's page at path `then` (its gallery when None)."""
    token = secrets.token_urlsafe(32)
    await storage.signin.add_link(_token_hash(token), user_id, name, lifetime)
    url = f"{web_base_url(settings)}{SIGNIN_LINK_PATH}{token}"
    if then is not None:
        url += "?" + urlencode({"next": then})
    return SigninLink(url, round(lifetime.total_seconds() / 60))


async def redeem_signin_link(storage: Storage, token: str) -> tuple[int, str]:
    """The member (id, name) a link's token signs in, using the link up; SigninLinkRefused says why not."""
    claim = await storage.signin.claim_link(_token_hash(token)) if token else None
    if claim is None:
        raise SigninLinkRefused(UNKNOWN_LINK)
    if claim.used_at is not None:
        raise SigninLinkRefused(USED_LINK)
    if claim.expired:
        raise SigninLinkRefused(EXPIRED_LINK.format(minutes=round(LINK_LIFETIME.total_seconds() / 60)))
    return claim.user_id, claim.display_name


async def note_server_manager(
    storage: Storage, user_id: int, name: str, guild_id: int, manages_server: bool
) -> None:
    """What the bot saw of a member in a server: with Manage Server or not (so the web knows its admins)."""
    await storage.signin.note_server_manager(user_id, guild_id, manages_server, name)


async def is_web_admin(storage: Storage, settings: Settings, user_id: int) -> bool:
    """ADMIN_USER_IDS, or a member the bot last saw with Manage Server in one of its servers."""
    return user_id in settings.admin_user_ids or await storage.signin.manages_a_server(user_id)


async def web_sessions_generation(storage: Storage, user_id: int) -> int:
    """The number a web sign-in of `user_id` carries and must still carry to count: a sign-in made before the
    member's last "Sign out everywhere" carries an older one."""
    return await storage.signin.web_sessions_generation(user_id)


async def end_web_sessions(storage: Storage, user_id: int, name: str) -> None:
    """ "Sign out everywhere": every web sign-in `user_id` has made so far ends, in every browser."""
    await storage.signin.end_web_sessions(user_id, name)
