"""Storage fixtures: every test that takes `database_url` or `storage` runs on a fresh SQLite file
and on a fresh PostgreSQL database (from --postgres-url; skipped with the reason if unreachable,
failed instead under --require-services)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage import Storage, sqlite_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def run_sql(url: str, *statements: str) -> None:
    """Run statements outside any transaction, on a thread of its own (fixtures may run inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, _run_autocommit(url, *statements)).result()


async def _run_autocommit(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped when the session ends."""
    url = request.config.getoption("--postgres-url")
    name = f"kaika_storage_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        run_sql(url, f'CREATE DATABASE "{name}"')
    except Exception as error:
        reason = f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {error!r}"
        if request.config.getoption("--require-services"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    run_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the session's PostgreSQL database wiped clean."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    url = request.getfixturevalue("postgres_server_url")
    run_sql(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def storage(database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Storage]:
    opened = await Storage.open(database_url, tmp_path / "images", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
