"""`Storage`: the one object the application opens to reach every repository and the image store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.accounts import GuildRepository, UserRepository
from storage.database import Database, storage_errors
from storage.engine import create_engine
from storage.images import ImageStore, LocalImageStore
from storage.jobs import JobRepository, new_job_id
from storage.migrate import migrate
from storage.models import Image, Upload
from storage.records import Clock, utc_now
from storage.signin import SigninRepository
from storage.stats import StatsRepository
from storage.uploads import UploadRepository

# Files younger than this are never swept: their rows may be about to be written.
SWEEP_GRACE = timedelta(hours=1)


class Storage:
    """Users, guilds, jobs, images and usage figures.

    `jobs` (`JobRepository`), `users` (`UserRepository`), `guilds` (`GuildRepository`),
    `stats` (`StatsRepository`), `uploads` (`UploadRepository`), `signin` (`SigninRepository`: the web
    companion's one-time links and server managers) and `images` (the `ImageStore`, to read files back by key).
    Open it with `await Storage.open(url, data_dir / "images")`; close it with `await close()`
    or use it as `async with`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        images: ImageStore,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_job_id,
        video_quota_weight: int = 1,
    ) -> None:
        self.engine = engine
        self.images = images
        self._db = Database(engine, clock)
        self.jobs = JobRepository(self._db, images, new_id, video_quota_weight)
        self.users = UserRepository(self._db)
        self.guilds = GuildRepository(self._db)
        self.stats = StatsRepository(self._db)
        self.uploads = UploadRepository(self._db, images)
        self.signin = SigninRepository(self._db)

    @classmethod
    async def open(
        cls,
        database_url: str,
        images: ImageStore | Path,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_job_id,
        run_migrations: bool = True,
        video_quota_weight: int = 1,
    ) -> Storage:
        """Connect to `database_url`, bring its schema up to date, and use `images` for files.

        `images` is an `ImageStore`, or a folder for a `LocalImageStore`; a video job counts as
        `video_quota_weight` jobs of a daily quota (VIDEO_QUOTA_WEIGHT).
        """
        engine = create_engine(database_url)
        try:
            if run_migrations:
                await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        store = LocalImageStore(images) if isinstance(images, Path) else images
        return cls(engine, store, clock=clock, new_id=new_id, video_quota_weight=video_quota_weight)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One round trip to the database; `StorageUnavailable` when it cannot be reached (for /readyz)."""
        async with self._db.read() as session:
            await session.execute(select(1))

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def sweep_orphans(self, grace: timedelta = SWEEP_GRACE) -> list[str]:
        """Delete stored files no image row refers to and older than `grace`; returns their keys.

        Such files come from a crash (or failure) between writing a file and recording it, from
        deleted jobs, or from interrupted writes. Safe to run while the bot works.
        """
        # File times are wall-clock times, so the grace is measured on the wall clock too.
        with storage_errors():
            candidates = await self.images.keys_older_than(datetime.now(UTC) - grace)
        removed = []
        for start in range(0, len(candidates), 500):
            batch = candidates[start : start + 500]
            async with self._db.read() as session:
                referenced = set(
                    await session.scalars(select(Image.storage_key).where(Image.storage_key.in_(batch)))
                ) | set(
                    await session.scalars(select(Upload.storage_key).where(Upload.storage_key.in_(batch)))
                )
            for key in batch:
                if key not in referenced:
                    with storage_errors():
                        await self.images.delete(key)
                    removed.append(key)
        return removed
