"""Signing in with Discord (OAuth2 authorization code, `identify`) against the fake Discord, which checks
every step against Discord's OpenAPI spec (its teardown fails the test on a spec violation)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from testkit.fake_discord import FakeDiscord
from tests.fixtures.services import OpenServices
from tests.web.conftest import SITE_SETTINGS, site_settings
from tests.web.helpers import Site, WebClient
from web.signin import STALE_DISCORD_SIGNIN


@pytest.fixture
async def oauth_site(
    open_services: OpenServices, tiny_model_dir: Path, tmp_path: Path, fake_discord: FakeDiscord
) -> AsyncIterator[Site]:
    client_id, secret = fake_discord.oauth_application()
    settings = site_settings(
        tiny_model_dir,
        tmp_path,
        discord_api_base=fake_discord.api_base,
        discord_client_id=client_id,
        discord_client_secret=secret,
        web_base_url="http://kaika.example.org:8080",
    )
    site = Site(await open_services(**SITE_SETTINGS), settings)
    yield site
    await site.close()


async def _to_discord(visitor: WebClient, next_path: str = "/") -> URL:
    response = await visitor.get(str(URL("/signin/discord").with_query(next=next_path)))
    assert response.status == 302
    return URL(response.headers["Location"])


async def _back_from_discord(visitor: WebClient, authorize: URL) -> URL:
    """What the browser does at Discord's consent page: it is sent back to the redirect_uri."""
    response = await visitor.client.session.get(str(authorize), allow_redirects=False)
    assert response.status == 302, await response.text()
    return URL(response.headers["Location"])


async def test_a_member_signs_in_with_discord(oauth_site: Site, fake_discord: FakeDiscord) -> None:
    ada = fake_discord.add_member("Ada Lovelace")
    fake_discord.consenting = ada
    visitor = await oauth_site.client()
    assert "Sign in with Discord" in await visitor.get_page("/signin")

    authorize = await _to_discord(visitor, "/?kind=imagine")
    assert authorize.origin() == URL(fake_discord.base_url) and authorize.path == "/oauth2/authorize"
    assert authorize.query["scope"] == "identify" and authorize.query["response_type"] == "code"
    assert authorize.query["redirect_uri"] == "http://kaika.example.org:8080/signin/discord/callback"
    back = await _back_from_discord(visitor, authorize)
    assert str(back.with_query(None)) == "http://kaika.example.org:8080/signin/discord/callback"

    signed_in = await visitor.get(back.path_qs)
    assert signed_in.status == 302 and signed_in.headers["Location"] == "/?kind=imagine"
    page = await visitor.get_page("/")
    assert "Ada Lovelace" in page and "Sign out" in page
    (token_call,) = fake_discord.calls_to("POST", r"^/oauth2/token$")
    assert token_call.body["grant_type"] == "authorization_code" and "client_secret" not in token_call.body
    assert fake_discord.calls_to("GET", r"^/users/@me$")


async def test_a_callback_that_did_not_start_in_this_browser_is_refused(
    oauth_site: Site, fake_discord: FakeDiscord
) -> None:
    fake_discord.consenting = fake_discord.add_member("Ada")
    victim, attacker = await oauth_site.client(), await oauth_site.client()
    back = await _back_from_discord(attacker, await _to_discord(attacker))
    refused = await victim.get(
        back.path_qs, headers={"Accept": "text/html"}
    )  # login CSRF: state unknown here
    assert refused.status == 400 and STALE_DISCORD_SIGNIN in html.unescape(await refused.text())
    assert (await victim.get("/")).status == 302
    assert (await attacker.get(back.path_qs)).status == 302  # the browser that started it signs in
    replay = await attacker.get(back.path_qs)  # the state works once
    assert replay.status == 400 and await replay.text() == STALE_DISCORD_SIGNIN


async def test_cancelling_on_discords_page_says_nothing_was_shared(
    oauth_site: Site, fake_discord: FakeDiscord
) -> None:
    fake_discord.consent_denied = True
    visitor = await oauth_site.client()
    back = await _back_from_discord(visitor, await _to_discord(visitor))
    response = await visitor.get(back.path_qs)
    assert response.status == 400
    assert await response.text() == "You cancelled signing in with Discord; nothing was shared with Kaika."
    assert (await visitor.get("/")).status == 302


async def test_a_code_discord_refuses_is_not_a_sign_in(oauth_site: Site, fake_discord: FakeDiscord) -> None:
    fake_discord.consenting = fake_discord.add_member("Ada")
    visitor = await oauth_site.client()
    back = await _back_from_discord(visitor, await _to_discord(visitor))
    forged = back.update_query(code="not-a-code")
    response = await visitor.get(forged.path_qs)
    assert response.status == 400 and "Discord did not accept this sign-in" in await response.text()
    assert (await visitor.get("/")).status == 302


async def test_a_wrong_client_secret_is_named(oauth_site: Site, fake_discord: FakeDiscord) -> None:
    fake_discord.consenting = fake_discord.add_member("Ada")
    fake_discord.client_secret = "rotated"
    visitor = await oauth_site.client()
    back = await _back_from_discord(visitor, await _to_discord(visitor))
    response = await visitor.get(back.path_qs)
    assert (
        response.status == 400
        and "DISCORD_CLIENT_ID or DISCORD_CLIENT_SECRET is wrong" in await response.text()
    )


async def test_discord_unreachable_is_one_clear_line(oauth_site: Site, fake_discord: FakeDiscord) -> None:
    fake_discord.consenting = fake_discord.add_member("Ada")
    visitor = await oauth_site.client()
    back = await _back_from_discord(visitor, await _to_discord(visitor))
    await fake_discord.close()
    response = await visitor.get(back.path_qs)
    assert response.status == 400 and "could not reach Discord" in await response.text()


async def test_without_oauth_settings_only_links_sign_in(site: Site) -> None:
    visitor = await site.client()
    page = await visitor.get_page("/signin")
    assert "Sign in with Discord" not in page and "/web" in page
    response = await visitor.get("/signin/discord")
    assert response.status == 404 and "DISCORD_CLIENT_ID" in await response.text()
