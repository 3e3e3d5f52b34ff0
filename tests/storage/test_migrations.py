"""The schema comes only from Alembic, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import Storage, create_engine, migrate
from storage.migrate import current_revision, downgrade, head_revision
from storage.models import Base
from storage.records import FrontEnd


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda sync: inspect(sync).get_indexes(table))
            return {index["name"] for index in found}
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_creates_every_table_at_head(database_url: str) -> None:
    assert await current_revision(database_url) is None
    await migrate(database_url)
    assert await current_revision(database_url) == head_revision() == "0009"
    assert {
        "users",
        "guilds",
        "jobs",
        "images",
        "usage_daily",
        "signin_links",
        "server_managers",
    } <= await _tables(database_url)


async def test_models_match_what_the_migrations_build(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_upgrade_from_the_first_revision_keeps_its_data(database_url: str) -> None:
    await migrate(database_url, "0001")
    assert await current_revision(database_url) == "0001"
    assert "ix_jobs_usage" not in await _indexes(database_url, "jobs")
    engine = create_engine(database_url)
    queued = datetime(2026, 1, 2, 3, 4, 5)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, display_name, first_seen, banned, defaults, jobs_total, images_total,"
                    " compute_seconds_total) VALUES (7, 'Ada', :t, false, '{}', 1, 0, 0)"
                ),
                {"t": queued},
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, kind, status, prompt, negative_prompt, params, requester_id, owner_id,"
                    " queued_at, image_count) VALUES ('old-job', 'imagine', 'queued', 'a fox', '', '{}', 7, 7, :t, 0)"
                ),
                {"t": queued},
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, kind, status, prompt, negative_prompt, params, requester_id, owner_id,"
                    " guild_id, channel_id, queued_at, image_count)"
                    " VALUES ('bot-job', 'imagine', 'queued', 'a cat', '', '{}', 7, 7, 5, 6, :t, 0)"
                ),
                {"t": queued},
            )
    finally:
        await engine.dispose()

    await migrate(database_url)

    assert await current_revision(database_url) == head_revision() == "0009"
    indexes = await _indexes(database_url, "jobs")
    assert {"ix_jobs_usage", "ix_jobs_requester", "ix_jobs_guild"} <= indexes
    assert "ix_jobs_requester_id_queued_at" not in indexes
    assert {"ix_users_jobs_total"} <= await _indexes(database_url, "users")
    async with await Storage.open(database_url, _NoImages()) as storage:
        job = await storage.jobs.get("old-job")
        assert job is not None
        assert (job.prompt, job.owner_id, job.queued_at) == ("a fox", 7, queued.replace(tzinfo=UTC))
        assert [job.id for job in await storage.jobs.unfinished()] == ["bot-job", "old-job"]
        # Revision 0007: a job with a channel was the bot's; one without (the command line's) stays unknown,
        # so no front end resumes it.
        assert [job.id for job in await storage.jobs.unfinished(FrontEnd.DISCORD)] == ["bot-job"]
        assert job.front_end is None
        assert await storage.jobs.unfinished(FrontEnd.WEB) == []


async def test_migrating_twice_is_harmless_and_downgrade_undoes_the_chain(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    assert await current_revision(database_url) == head_revision() == "0009"
    await downgrade(database_url, "0001")
    assert "ix_jobs_usage" not in await _indexes(database_url, "jobs")
    await downgrade(database_url, "base")
    assert await _tables(database_url) <= {"alembic_version"}


class _NoImages:
    """An image store for tests that never touch files: any use is a test failure."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        raise AssertionError(f"image store used: {name}")
