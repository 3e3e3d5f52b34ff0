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

    def upsert_adding(self, table: Table, keys: dict[str, Any], amounts: dict[str, Any]) -> Any:
        """INSERT keys+amounts, or, if the row exists, add `amounts` to its columns (one atomic statement)."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(**keys, **amounts)
        return statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={column: table.c[column] + statement.excluded[column] for column in amounts},
        )
