"""Users (names, bans, defaults) and guild settings (quota, blocklist, button policy)."""

from __future__ import annotations

import pytest

from storage import ButtonPolicy, GuildSettings, InvalidValue, Storage
from tests.fixtures.storage import FakeClock

ADA = 101


async def test_users_are_created_when_first_seen_and_keep_their_latest_name(
    storage: Storage, clock: FakeClock
) -> None:
    assert await storage.users.get(ADA) is None
    first_seen = clock.now
    await storage.jobs.create("imagine", ADA, prompt="p", requester_name="Ada")
    clock.advance(days=3)
    await storage.jobs.create("imagine", ADA, prompt="p", requester_name="Ada L.")
    await storage.jobs.create("imagine", ADA, prompt="p")  # no name given: the last one stays
    user = await storage.users.get(ADA)
    assert user is not None
    assert (user.display_name, user.first_seen, user.banned, user.defaults) == (
        "Ada L.",
        first_seen,
        False,
        {},
    )


async def test_banning_someone_never_seen_remembers_them(storage: Storage) -> None:
    assert not await storage.users.is_banned(ADA)
    await storage.users.ban(ADA)
    assert await storage.users.is_banned(ADA)
    assert (await storage.users.get(ADA)).banned  # type: ignore[union-attr]


async def test_defaults_merge_and_none_removes(storage: Storage) -> None:
    assert await storage.users.defaults(ADA) == {}
    assert await storage.users.set_defaults(ADA, ar="16:9", stylize=250) == {"ar": "16:9", "stylize": 250}
    assert await storage.users.set_defaults(ADA, model="demo", stylize=None) == {
        "ar": "16:9",
        "model": "demo",
    }
    assert await storage.users.defaults(ADA) == {"ar": "16:9", "model": "demo"}
    with pytest.raises(InvalidValue, match="The default 'ar' must be text or a number"):
        await storage.users.set_defaults(ADA, ar=[16, 9])  # type: ignore[arg-type]
    assert await storage.users.defaults(ADA) == {"ar": "16:9", "model": "demo"}


async def test_guild_settings_start_at_the_defaults(storage: Storage) -> None:
    assert await storage.guilds.settings(5) == GuildSettings(
        guild_id=5, daily_quota=None, blocklist=(), button_policy=ButtonPolicy.ANYONE
    )


async def test_guild_settings_change_only_what_is_given(storage: Storage) -> None:
    await storage.guilds.update(5, daily_quota=25, blocklist=["  Gore ", "gore", "Blood   Bath", ""])
    changed = await storage.guilds.update(5, button_policy="owner")
    assert changed == GuildSettings(5, 25, ("gore", "blood bath"), ButtonPolicy.OWNER)
    assert await storage.guilds.settings(5) == changed
    assert (await storage.guilds.update(5, daily_quota=None)).daily_quota is None
    assert await storage.guilds.settings(6) == GuildSettings(guild_id=6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"daily_quota": -1}, "The daily quota must be a whole number of jobs, 0 or more"),
        ({"daily_quota": 2.5}, "The daily quota must be a whole number"),
        ({"button_policy": "admins"}, "Unknown button policy 'admins'; expected one of anyone, owner"),
        ({"blocklist": "gore"}, "a list of words or phrases, not one string"),
        ({"blocklist": ["ok", 3]}, "Blocklist entries must be text"),
        ({"blocklist": ["x" * 101]}, "at most 100 characters"),
    ],
)
async def test_bad_guild_settings_are_refused_and_change_nothing(
    storage: Storage, change: dict, message: str
) -> None:
    before = await storage.guilds.update(5, daily_quota=10, blocklist=["gore"])
    with pytest.raises(InvalidValue, match=message):
        await storage.guilds.update(5, **{"daily_quota": 3, "blocklist": ["new"], **change})
    assert await storage.guilds.settings(5) == before


async def test_the_banned_users_are_listed_until_unbanned(storage: Storage) -> None:
    await storage.jobs.create("imagine", ADA, prompt="p", requester_name="Ada")
    await storage.users.ban(202)
    await storage.users.ban(ADA)
    assert [(user.id, user.display_name) for user in await storage.users.banned()] == [
        (ADA, "Ada"),
        (202, ""),
    ]
    await storage.users.unban(ADA)
    assert [user.id for user in await storage.users.banned()] == [202]


async def test_known_guilds_are_those_configured_used_or_managed(storage: Storage) -> None:
    assert await storage.guilds.known_ids() == []
    await storage.guilds.update(7, daily_quota=3)
    await storage.jobs.create("imagine", ADA, prompt="p", guild_id=9)
    await storage.jobs.create("imagine", ADA, prompt="p")  # outside any guild: not one
    await storage.signin.note_server_manager(ADA, 11, True, "Ada")
    await storage.signin.note_server_manager(202, 12, True, "Bob")
    assert await storage.guilds.known_ids() == [7, 9, 11, 12]
    assert await storage.guilds.managed_by(ADA) == [11]
    await storage.signin.note_server_manager(ADA, 11, False, "Ada")
    assert await storage.guilds.managed_by(ADA) == []
