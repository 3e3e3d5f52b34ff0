"""What every repository shares: the engine, session factories, the clock and the SQL dialect."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.engine import writer
from storage.errors import StorageFault, StorageUnavailable
from storage.models import User
from storage.records import Clock

log = logging.getLogger(__name__)

# Statements the database refuses whatever its state: retrying cannot help, so they are faults of ours.
_FAULTS = (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.NotSupportedError)
# A driver's own errors that SQLAlchemy passes through unwrapped (asyncpg's, raised while connecting).
_DRIVERS = ("asyncpg", "sqlite3", "aiosqlite")


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn database and disk errors into `StorageUnavailable` (try again later) or `StorageFault` (a bug),
    so no driver error leaves the storage layer. Errors of the storage layer's own pass unchanged."""
    try:
        yield
    except _FAULTS as error:
        log.error("The database refused a statement", exc_info=error)
        raise StorageFault() from error
    except (sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.TimeoutError, OSError) as error:
        log.warning("Storage unavailable: %s", _first_line(error))
        raise StorageUnavailable() from error
    except sa_exc.SQLAlchemyError as error:
        log.error("Storage failed", exc_info=error)
        raise StorageFault() from error
    except Exception as error:
        if type(error).__module__.split(".")[0] not in _DRIVERS:
            raise
        log.warning("Storage unavailable: %s", _first_line(error))
        raise StorageUnavailable() from error


def _first_line(error: BaseException) -> str:
    """The error without the SQL and parameters SQLAlchemy appends (they may hold user text)."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"


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
        """A session for reading; database errors leave it as `storage_errors` turns them."""
        with storage_errors():
            async with self._read_sessions() as session:
                yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on any error;
        database errors (the commit's too) leave it as `storage_errors` turns them."""
        with storage_errors():
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
