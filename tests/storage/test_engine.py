"""The engine factory: SQLite tuned for concurrent writers, PostgreSQL URLs used as given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import GeneratedImage, JobStatus, Storage, create_engine, sqlite_url


async def test_sqlite_file_gets_wal_foreign_keys_busy_timeout_and_its_folder(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "not" / "yet")
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
    finally:
        await engine.dispose()
    assert pragmas == ["wal", 1, 30000]
    assert (tmp_path / "not" / "yet" / "kaika.db").is_file()


async def test_postgresql_url_is_used_unchanged() -> None:
    url = "postgresql+asyncpg://someone@db.example:6543/kaika"
    engine = create_engine(url)
    try:
        assert engine.url.render_as_string() == url
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "asyncpg"
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_200_concurrent_jobs_all_land(database_url: str, tmp_path: Path) -> None:
    """Two Storage objects (as two processes would) hammer one database: every write lands.

    On SQLite this is the "database is locked" test: each job is three write transactions.
    """
    url = database_url
    first = await Storage.open(url, tmp_path / "images")
    second = await Storage.open(url, tmp_path / "images")

    async def one_job(storage: Storage, number: int) -> str:
        job = await storage.jobs.create("imagine", 1000 + number % 20, prompt=f"job {number}", seed=number)
        await storage.jobs.start(job.id)
        await storage.jobs.finish(job.id, [GeneratedImage(f"image {number}".encode(), number, 64, 64)], 0.5)
        return job.id

    try:
        ids = await asyncio.gather(*(one_job(first if n % 2 else second, n) for n in range(200)))
        assert len(set(ids)) == 200
        report = await first.stats.usage("all")
        assert (report.jobs, report.done, report.images) == (200, 200, 200)
        for user_id in range(1000, 1020):
            mine = await second.jobs.recent_for_user(user_id, limit=50)
            assert len(mine) == 10
            assert all(job.status is JobStatus.DONE and len(job.images) == 1 for job in mine)
    finally:
        await first.close()
        await second.close()
