"""The web companion's sign-in records: one-time links and who the bot saw with Manage Server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from storage.database import Database
from storage.models import ServerManager, SigninLink, User

# Spent and expired links are removed this long after they expire (kept a while so that a second use
# of a link says "already used" rather than "not a sign-in link").
LINKS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class LinkClaim:
    """What claiming a sign-in link found: whose it is, and whether this claim was its one use."""

    user_id: int
    display_name: str
    expires_at: datetime
    used_at: datetime | None  # when it was used before this claim; None if this claim used it
    expired: bool

    @property
    def claimed(self) -> bool:
        return self.used_at is None and not self.expired


class SigninRepository:
    """Reached as `storage.signin`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_link(self, token_hash: str, user_id: int, name: str, lifetime: timedelta) -> datetime:
        """Keep a new link (by its token's hash) for `user_id`; returns when it expires."""
        now = self._db.now()
        async with self._db.write() as session:
            await self._db.ensure_user(session, user_id, name, now)
            await session.execute(delete(SigninLink).where(SigninLink.expires_at < now - LINKS_KEPT))
            session.add(
                SigninLink(token_hash=token_hash, user_id=user_id, created_at=now, expires_at=now + lifetime)
            )
        return now + lifetime

    async def claim_link(self, token_hash: str) -> LinkClaim | None:
        """Use the link once: of two claims at once, only one finds it unused. None for no such link."""
        now = self._db.now()
        async with self._db.write() as session:
            row = (
                await session.execute(
                    select(SigninLink, User.display_name)
                    .join(User, User.id == SigninLink.user_id)
                    .where(SigninLink.token_hash == token_hash)
                )
            ).one_or_none()
            if row is None:
                return None
            link, name = row
            expired = link.expires_at <= now
            used_at = link.used_at
            if used_at is None and not expired:
                claimed = await session.execute(
                    update(SigninLink)
                    .where(SigninLink.token_hash == token_hash, SigninLink.used_at.is_(None))
                    .values(used_at=now)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    used_at = now  # another claim took it between our read and our write
            return LinkClaim(link.user_id, name, link.expires_at, used_at, expired)

    async def note_server_manager(self, user_id: int, guild_id: int, manages: bool, name: str | None) -> None:
        """Record whether the bot saw `user_id` with Manage Server in `guild_id` (kept per guild, so losing
        the permission in one server leaves another's)."""
        now = self._db.now()
        async with self._db.write() as session:
            if manages:
                await self._db.ensure_user(session, user_id, name, now)
                statement = self._db.insert(ServerManager).values(
                    user_id=user_id, guild_id=guild_id, seen_at=now
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["user_id", "guild_id"], set_={"seen_at": statement.excluded.seen_at}
                    )
                )
            else:
                await session.execute(
                    delete(ServerManager).where(
                        ServerManager.user_id == user_id, ServerManager.guild_id == guild_id
                    )
                )

    async def web_sessions_generation(self, user_id: int) -> int:
        """The number a web sign-in of `user_id` must carry to count (0 until they sign out everywhere)."""
        async with self._db.read() as session:
            found = await session.scalar(select(User.web_sessions_generation).where(User.id == user_id))
            return found or 0

    async def end_web_sessions(self, user_id: int, name: str) -> int:
        """End every web sign-in of `user_id` ("Sign out everywhere"): the number counts up; returns the new one."""
        now = self._db.now()
        async with self._db.write() as session:
            await self._db.ensure_user(session, user_id, name, now)
            await session.execute(
                update(User)
                .where(User.id == user_id)
                .values(web_sessions_generation=User.web_sessions_generation + 1)
            )
            generation = await session.scalar(select(User.web_sessions_generation).where(User.id == user_id))
            return int(generation or 0)

    async def manages_a_server(self, user_id: int) -> bool:
        """Whether the bot last saw `user_id` with Manage Server in at least one guild."""
        async with self._db.read() as session:
            found = await session.scalar(
                select(ServerManager.guild_id).where(ServerManager.user_id == user_id).limit(1)
            )
            return found is not None
