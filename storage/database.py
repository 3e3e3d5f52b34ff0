"""What every repository shares: the engine, session factories, the clock and the SQL dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.engine import writer
from storage.models import User
from storage.records import Clock


class Database:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.dialect = engine.dialect.name
        self._read_sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(writer(engine), expire_on_commit=False)

    def now(self) -> datetime:
        """The injected clock's time, in UTC."""
        value = self.clock()
        if value.tzinfo is None:
            raise ValueError("the storage clock must return aware datetimes")
        return value.astimezone(UTC)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on any error."""
        async with self._write_sessions() as session, session.begin():
            yield session

    def insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on this database."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def upsert_adding(self, table: Table, keys: dict[str, Any], amounts: dict[str, Any]) -> Any:
        """INSERT keys+amounts, or, if the row exists, add `amounts` to its columns (one atomic statement)."""
        statement = self.insert(table).values(**keys, **amounts)
        return statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={column: table.c[column] + statement.excluded[column] for column in amounts},
        )

    async def ensure_user(self, session: AsyncSession, user_id: int, name: str | None, now: datetime) -> None:
        """Create the user row if missing; refresh the display name when one is given."""
        statement = self.insert(User).values(
            id=user_id,
            display_name=(name or "")[:100],
            first_seen=now,
            banned=False,
            defaults={},
            jobs_total=0,
            images_total=0,
            compute_seconds_total=0.0,
        )
        if name:
            statement = statement.on_conflict_do_update(
                index_elements=["id"], set_={"display_name": statement.excluded.display_name}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["id"])
        await session.execute(statement)
