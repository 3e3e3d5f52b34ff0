"""Async engines from a database URL: SQLite (the default) tuned for a busy bot, PostgreSQL as given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Writers wait this long for SQLite's single write lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
# Execution option that makes a SQLite transaction take the write lock at BEGIN (see `_begin`).
WRITE_OPTION = "kaika_write"


def sqlite_url(data_dir: Path) -> str:
    """The default database: `kaika.db` inside `data_dir`."""
    return f"sqlite+aiosqlite:///{(Path(data_dir) / 'kaika.db').resolve()}"


# What Kaika keeps (members' prompts, ids and images) is readable by the account it runs as only.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def keep_private(database: Path) -> None:
    """Create the SQLite file's folder and the file itself readable by this account only (and make an
    existing file so); SQLite gives its -wal and -shm files the database file's permissions."""
    database.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    os.close(os.open(database, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
    os.chmod(database, PRIVATE_FILE)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An `AsyncEngine` for `url`.

    SQLite files get WAL (readers never block the writer), foreign keys on, a busy timeout, and
    write transactions that begin IMMEDIATE: a deferred transaction that later writes cannot wait
    for the lock (SQLite reports "database is locked" at once), an immediate one waits its turn.
    The parent folder of the file is created. Other URLs (postgresql+asyncpg://…) are used unchanged.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **engine_options)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        keep_private(Path(database))
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, **engine_options.pop("connect_args", {})}
    engine = create_async_engine(url, connect_args=connect_args, **engine_options)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins (see `_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions are write transactions."""
    return engine.execution_options(**{WRITE_OPTION: True})
