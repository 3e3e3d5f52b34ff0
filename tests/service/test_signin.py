"""One-time sign-in links to the web companion, and who is an admin there (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from service.settings import Settings
from service.signin import (
    EXPIRED_LINK,
    SIGNIN_LINK_PATH,
    UNKNOWN_LINK,
    USED_LINK,
    SigninLinkRefused,
    end_web_sessions,
    is_web_admin,
    new_signin_link,
    note_server_manager,
    redeem_signin_link,
    web_sessions_generation,
)
from storage import Storage
from tests.fixtures.storage import FakeClock

SETTINGS = Settings(_env_file=None, web_base_url="https://kaika.example.org/", admin_user_ids=[9])


def _token(url: str) -> str:
    return url.rpartition(SIGNIN_LINK_PATH)[2]


async def test_a_link_signs_its_member_in_once(storage: Storage) -> None:
    link = await new_signin_link(storage, SETTINGS, 42, "Ada")
    assert link.url.startswith("https://kaika.example.org/signin/link/") and link.minutes == 10
    assert len(_token(link.url)) >= 43  # 256 random bits
    assert await redeem_signin_link(storage, _token(link.url)) == (42, "Ada")
    with pytest.raises(SigninLinkRefused, match=re.escape(USED_LINK)):
        await redeem_signin_link(storage, _token(link.url))


async def test_of_two_uses_at_once_only_one_signs_in(storage: Storage) -> None:
    token = _token((await new_signin_link(storage, SETTINGS, 42, "Ada")).url)
    outcomes = await asyncio.gather(
        *(redeem_signin_link(storage, token) for _ in range(4)), return_exceptions=True
    )
    assert sum(outcome == (42, "Ada") for outcome in outcomes) == 1
    assert all(isinstance(o, SigninLinkRefused) for o in outcomes if o != (42, "Ada"))


async def test_a_link_expires_after_ten_minutes(storage: Storage, clock: FakeClock) -> None:
    fresh = _token((await new_signin_link(storage, SETTINGS, 42, "Ada")).url)
    stale = _token((await new_signin_link(storage, SETTINGS, 42, "Ada")).url)
    clock.advance(minutes=9, seconds=59)
    assert await redeem_signin_link(storage, fresh) == (42, "Ada")
    clock.advance(seconds=1)
    with pytest.raises(SigninLinkRefused, match=re.escape(EXPIRED_LINK.format(minutes=10))):
        await redeem_signin_link(storage, stale)


async def test_an_unknown_or_altered_token_signs_nobody_in(storage: Storage) -> None:
    token = _token((await new_signin_link(storage, SETTINGS, 42, "Ada")).url)
    for wrong in ("", "x", token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B")):
        with pytest.raises(SigninLinkRefused, match=re.escape(UNKNOWN_LINK)):
            await redeem_signin_link(storage, wrong)
    assert await redeem_signin_link(storage, token) == (42, "Ada")  # untouched by the wrong tries


async def test_only_the_tokens_hash_is_stored(storage: Storage) -> None:
    from sqlalchemy import text

    token = _token((await new_signin_link(storage, SETTINGS, 42, "Ada")).url)
    async with storage.engine.connect() as connection:
        stored = [row[0] for row in await connection.execute(text("SELECT token_hash FROM signin_links"))]
    assert len(stored) == 1 and token not in stored[0]


async def test_admins_are_admin_user_ids_and_members_seen_with_manage_server(storage: Storage) -> None:
    assert await is_web_admin(storage, SETTINGS, 9)  # ADMIN_USER_IDS
    assert not await is_web_admin(storage, SETTINGS, 42)
    await note_server_manager(storage, 42, "Ada", guild_id=1, manages_server=True)
    await note_server_manager(storage, 42, "Ada", guild_id=2, manages_server=True)
    assert await is_web_admin(storage, SETTINGS, 42)
    await note_server_manager(storage, 42, "Ada", guild_id=1, manages_server=False)
    assert await is_web_admin(storage, SETTINGS, 42)  # still manages server 2
    await note_server_manager(storage, 42, "Ada", guild_id=2, manages_server=False)
    assert not await is_web_admin(storage, SETTINGS, 42)


async def test_signing_out_everywhere_moves_on_the_number_only_that_members_sign_ins_carry(
    storage: Storage,
) -> None:
    assert await web_sessions_generation(storage, 42) == 0  # a member never seen: what every sign-in carries
    await new_signin_link(storage, SETTINGS, 7, "Bo")
    await end_web_sessions(storage, 42, "Ada")
    assert await web_sessions_generation(storage, 42) == 1
    await end_web_sessions(storage, 42, "Ada")
    assert await web_sessions_generation(storage, 42) == 2
    assert await web_sessions_generation(storage, 7) == 0  # another member's sign-ins are untouched


async def test_links_long_expired_are_cleared_away(storage: Storage, clock: FakeClock) -> None:
    from sqlalchemy import text

    await new_signin_link(storage, SETTINGS, 42, "Ada", lifetime=timedelta(minutes=10))
    clock.advance(days=2)
    await new_signin_link(storage, SETTINGS, 42, "Ada")
    async with storage.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM signin_links"))).scalar() == 1


@pytest.mark.parametrize(
    "address", ["kaika.example.org", "https://kaika.example.org/kaika", "ftp://kaika.example.org"]
)
def test_web_base_url_must_be_a_scheme_and_a_host(address: str) -> None:
    from service.errors import SettingError
    from service.settings import load_settings

    with pytest.raises(
        SettingError, match=re.escape(f"WEB_BASE_URL={address!r}: Value error, must be the address")
    ):
        load_settings(_env_file=None, web_base_url=address)
    assert (
        load_settings(_env_file=None, web_base_url="http://127.0.0.1:8080/").web_base_url
        == "http://127.0.0.1:8080/"
    )
