"""Alembic, run from code: `await migrate(url)` brings any database to the newest schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config for the migrations shipped in this package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate(url_or_engine: str | AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to `revision` (default: the newest). Safe to call at every start."""
    await _run(url_or_engine, lambda connection: command.upgrade(_config_on(connection), revision))


async def downgrade(url_or_engine: str | AsyncEngine, revision: str) -> None:
    """Step the schema back to `revision` ("base" = empty). For operators and tests; the app never does."""
    await _run(url_or_engine, lambda connection: command.downgrade(_config_on(connection), revision))


async def current_revision(url_or_engine: str | AsyncEngine) -> str | None:
    """The revision the database is at; None for an empty database."""
    async with _engine(url_or_engine) as engine, engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def _run(url_or_engine: str | AsyncEngine, step: Callable[[Connection], None]) -> None:
    async with _engine(url_or_engine) as engine, engine.begin() as connection:
        await connection.run_sync(step)


@asynccontextmanager
async def _engine(url_or_engine: str | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The given engine, or one made from the URL for this call only."""
    if not isinstance(url_or_engine, str):
        yield url_or_engine
        return
    engine = create_engine(url_or_engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def _config_on(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config
