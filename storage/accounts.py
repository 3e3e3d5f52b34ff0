"""Users (bans, per-user defaults) and guilds (quota, prompt blocklist, button policy)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from storage.database import Database
from storage.errors import InvalidValue, parse_choice
from storage.models import Guild, Job, ServerManager, User
from storage.records import ButtonPolicy, GuildSettings, UserRecord

MAX_BLOCKLIST_ENTRIES = 500
MAX_BLOCKLIST_ENTRY_CHARS = 100


class UserRepository:
    """Reached as `storage.users`. A user row is created the first time a user is seen or changed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: int) -> UserRecord | None:
        async with self._db.read() as session:
            user = await session.get(User, user_id)
            return None if user is None else _user_record(user)

    async def ban(self, user_id: int) -> None:
        """Ban the user: `jobs.create` then raises UserBanned for them."""
        await self._set_banned(user_id, True)

    async def unban(self, user_id: int) -> None:
        await self._set_banned(user_id, False)

    async def is_banned(self, user_id: int) -> bool:
        async with self._db.read() as session:
            return bool(await session.scalar(select(User.banned).where(User.id == user_id)))

    async def banned(self) -> list[UserRecord]:
        """Every banned user, by id."""
        async with self._db.read() as session:
            users = await session.scalars(select(User).where(User.banned.is_(True)).order_by(User.id))
            return [_user_record(user) for user in users]

    async def defaults(self, user_id: int) -> dict[str, Any]:
        """The user's saved prompt defaults (keys such as "ar", "model", "stylize"); {} if none."""
        async with self._db.read() as session:
            saved = await session.scalar(select(User.defaults).where(User.id == user_id))
            return dict(saved or {})

    async def set_defaults(self, user_id: int, **values: str | int | float | bool | None) -> dict[str, Any]:
        """Merge `values` into the user's defaults (None removes a key); returns the new defaults.

        The bot validates what a value means (e.g. that "16:9" is an aspect ratio) before saving it.
        """
        for key, value in values.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                raise InvalidValue(
                    f"The default {key!r} must be text or a number (got {type(value).__name__})."
                )
        async with self._db.write() as session:
            await self._db.ensure_user(session, user_id, None, self._db.now())
            user = await session.get(User, user_id)
            assert user is not None
            merged = {**(user.defaults or {}), **values}
            user.defaults = {key: value for key, value in merged.items() if value is not None}
            return dict(user.defaults)

    async def _set_banned(self, user_id: int, banned: bool) -> None:
        async with self._db.write() as session:
            await self._db.ensure_user(session, user_id, None, self._db.now())
            user = await session.get(User, user_id)
            assert user is not None
            user.banned = banned


class _Unset:
    pass


UNSET: Any = _Unset()


class GuildRepository:
    """Reached as `storage.guilds`. A guild never configured has the defaults of `GuildSettings`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def settings(self, guild_id: int) -> GuildSettings:
        async with self._db.read() as session:
            guild = await session.get(Guild, guild_id)
            return GuildSettings(guild_id=guild_id) if guild is None else _guild_settings(guild)

    async def known_ids(self) -> list[int]:
        """Every guild Kaika has settings for, ran a job in or saw a server manager of (0: outside servers)."""
        async with self._db.read() as session:
            ids = set(await session.scalars(select(Guild.id)))
            ids.update(
                await session.scalars(select(Job.guild_id).where(Job.guild_id.is_not(None)).distinct())
            )
            ids.update(await session.scalars(select(ServerManager.guild_id).distinct()))
        return sorted(ids)

    async def managed_by(self, user_id: int) -> list[int]:
        """The guilds where the bot last saw `user_id` with Manage Server."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(ServerManager.guild_id)
                .where(ServerManager.user_id == user_id)
                .order_by(ServerManager.guild_id)
            )
            return list(rows)

    async def update(
        self,
        guild_id: int,
        *,
        daily_quota: int | None = UNSET,
        blocklist: Iterable[str] = UNSET,
        button_policy: ButtonPolicy | str = UNSET,
    ) -> GuildSettings:
        """Change the given settings only; returns them all. Bad values raise InvalidValue and change nothing.

        `daily_quota`: jobs per user per 24 h, None for unlimited. `blocklist`: words or phrases,
        stored trimmed, lower-case, without duplicates. `button_policy`: "anyone" or "owner".
        """
        changes: dict[str, Any] = {}
        if daily_quota is not UNSET:
            if daily_quota is not None and (
                isinstance(daily_quota, bool) or not isinstance(daily_quota, int) or daily_quota < 0
            ):
                raise InvalidValue(
                    f"The daily quota must be a whole number of jobs, 0 or more (got {daily_quota!r})."
                )
            changes["daily_quota"] = daily_quota
        if blocklist is not UNSET:
            changes["blocklist"] = _clean_blocklist(blocklist)
        if button_policy is not UNSET:
            changes["button_policy"] = parse_choice(ButtonPolicy, button_policy, "button policy").value
        async with self._db.write() as session:
            guild = await session.get(Guild, guild_id)
            if guild is None:
                guild = Guild(
                    id=guild_id, daily_quota=None, blocklist=[], button_policy=ButtonPolicy.ANYONE.value
                )
                session.add(guild)
            for name, value in changes.items():
                setattr(guild, name, value)
            await session.flush()
            return _guild_settings(guild)


def _clean_blocklist(entries: Iterable[str]) -> list[str]:
    if isinstance(entries, str):
        raise InvalidValue("The blocklist is a list of words or phrases, not one string.")
    cleaned: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidValue(f"Blocklist entries must be text (got {entry!r}).")
        term = " ".join(entry.lower().split())
        if len(term) > MAX_BLOCKLIST_ENTRY_CHARS:
            raise InvalidValue(f"A blocklist entry may have at most {MAX_BLOCKLIST_ENTRY_CHARS} characters.")
        if term and term not in cleaned:
            cleaned.append(term)
    if len(cleaned) > MAX_BLOCKLIST_ENTRIES:
        raise InvalidValue(f"The blocklist may hold at most {MAX_BLOCKLIST_ENTRIES} entries.")
    return cleaned


def _user_record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        display_name=user.display_name,
        first_seen=user.first_seen,
        banned=user.banned,
        defaults=dict(user.defaults or {}),
    )


def _guild_settings(guild: Guild) -> GuildSettings:
    return GuildSettings(
        guild_id=guild.id,
        daily_quota=guild.daily_quota,
        blocklist=tuple(guild.blocklist or ()),
        button_policy=ButtonPolicy(guild.button_policy),
    )
