"""Discord OAuth2, authorization code grant with the `identify` scope: who a visitor is on Discord.

Plain HTTP with aiohttp against DISCORD_API_BASE (the web companion does not use discord.py):
1. `authorize_url(...)` sends the visitor to Discord's consent page with a random `state`;
2. Discord sends them back to WEB_BASE_URL/signin/discord/callback with a `code`;
3. `identify(...)` trades the code for an access token (POST /oauth2/token) and reads GET /users/@me.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from yarl import URL

from service.errors import UserError
from service.settings import Settings

log = logging.getLogger(__name__)

SCOPE = "identify"
CALLBACK_PATH = "/signin/discord/callback"
TIMEOUT = aiohttp.ClientTimeout(total=15)


class DiscordSigninFailed(UserError):
    """Discord did not tell us who the visitor is; the message says what to do."""


@dataclass(frozen=True)
class DiscordUser:
    id: int
    name: str  # the display name (global_name), else the username


def oauth_configured(settings: Settings) -> bool:
    return bool(settings.discord_client_id and settings.discord_client_secret)


def authorize_url(settings: Settings, redirect_uri: str, state: str) -> str:
    """Discord's consent page (on the API's host: https://discord.com/oauth2/authorize)."""
    origin = URL(settings.discord_api_base).origin()
    return str(
        (origin / "oauth2" / "authorize").with_query(
            response_type="code",
            client_id=settings.discord_client_id,
            scope=SCOPE,
            state=state,
            redirect_uri=redirect_uri,
            prompt="none",  # a member who allowed Kaika before is sent straight back
        )
    )


async def identify(settings: Settings, code: str, redirect_uri: str) -> DiscordUser:
    """The Discord user who granted `code`; DiscordSigninFailed when Discord refuses or cannot be reached."""
    api = settings.discord_api_base.rstrip("/")
    client = {
        "Authorization": aiohttp.encode_basic_auth(settings.discord_client_id, settings.discord_client_secret)
    }
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            async with http.post(f"{api}/oauth2/token", data=form, headers=client) as response:
                granted = await response.json(content_type=None)
                if response.status != 200 or "access_token" not in granted:
                    log.warning(
                        "Discord refused the OAuth2 code: %s %s", response.status, granted.get("error")
                    )
                    raise DiscordSigninFailed(_refusal(granted.get("error")))
            if SCOPE not in str(granted.get("scope", "")).split():
                raise DiscordSigninFailed("Discord did not let Kaika see who you are (the identify scope).")
            headers = {"Authorization": f"Bearer {granted['access_token']}"}
            async with http.get(f"{api}/users/@me", headers=headers) as response:
                user = await response.json(content_type=None)
                if response.status != 200:
                    log.warning("Discord refused /users/@me: %s", response.status)
                    raise DiscordSigninFailed("Discord would not say who you are; try signing in again.")
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        log.warning("Signing in with Discord failed: %s", error)
        raise DiscordSigninFailed(
            "Kaika could not reach Discord to sign you in; try again in a minute, or use /web in Discord."
        ) from None
    return DiscordUser(int(user["id"]), user.get("global_name") or user["username"])


def _refusal(error: object) -> str:
    if error == "invalid_client":
        return (
            "Discord refused Kaika's OAuth2 client (DISCORD_CLIENT_ID or DISCORD_CLIENT_SECRET is wrong); "
            "tell the server's admin, and sign in with /web in Discord meanwhile."
        )
    return "Discord did not accept this sign-in (it may have been used or have expired); sign in again."
