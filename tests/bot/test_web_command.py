"""/web: a one-time sign-in link to the web companion, to the member alone; and the bot telling the web
which members have Manage Server."""

from __future__ import annotations

import asyncio
import re

from service.signin import is_web_admin
from testkit.fake_discord import MANAGE_GUILD
from tests.fixtures.discord_helpers import answer
from tests.web.helpers import Site

LINK = re.compile(r"<(http://kaika\.example\.org:8080/signin/link/[A-Za-z0-9_-]{43})>")


async def test_web_sends_a_one_time_link_that_signs_the_member_in(start_kaika):
    kaika = await start_kaika(web_base_url="http://kaika.example.org:8080/")
    fake = kaika.fake
    ada = fake.add_member("ada")
    interaction = await fake.slash(ada, "web")
    text = await answer(fake, interaction)
    assert interaction.ephemeral
    assert "works once, for 10 minutes" in text and "keep it to yourself" in text
    (url,) = LINK.findall(text)
    path = url.removeprefix("http://kaika.example.org:8080")

    site = Site(kaika.services, kaika.settings)
    try:
        browser = await site.client()
        assert (await browser.post(path)).status == 302
        page = await browser.get_page("/")
        assert "ada" in page and "Sign out" in page and 'href="/admin"' not in page
        second = await site.client()
        assert (await second.post(path)).status == 400  # used up
    finally:
        await site.close()
    other = LINK.findall(await answer(fake, await fake.slash(ada, "web")))
    assert other and other != [url]  # a new link each time


async def test_the_web_knows_members_with_manage_server_as_admins(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    boss, ada = fake.add_member("boss", manage_guild=True), fake.add_member("ada")
    storage, settings = kaika.services.storage, kaika.settings
    await answer(fake, await fake.slash(boss, "info"))  # any use of the bot is enough
    await answer(fake, await fake.slash(ada, "web"))  # /web records it before sending the link
    assert not await is_web_admin(storage, settings, ada.id)
    assert await _eventually(lambda: is_web_admin(storage, settings, boss.id), True)

    boss.permissions &= ~MANAGE_GUILD  # Manage Server taken away
    await answer(fake, await fake.slash(boss, "info"))
    assert await _eventually(lambda: is_web_admin(storage, settings, boss.id), False) is False


async def _eventually(check, wanted, seconds: float = 10.0):
    """`check()`'s value once it is `wanted` (the bot records it beside answering), or its last value."""
    for _ in range(int(seconds / 0.02)):
        if (value := await check()) == wanted:
            break
        await asyncio.sleep(0.02)
    return value
