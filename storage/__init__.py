"""Kaika's records: users, jobs, images and who owns them. Knows nothing of Discord or torch.

Usage (all coroutines; records come back as frozen dataclasses from `storage.records`)::

    from storage import Storage, GeneratedImage, sqlite_url

    storage = await Storage.open(sqlite_url(data_dir), data_dir / "images")   # runs migrations
    for job in await storage.jobs.unfinished():              # left by a previous process
        await storage.jobs.fail(job.id, "interrupted by a restart")

    job = await storage.jobs.create("imagine", user_id, prompt="a lighthouse", seed=42,
                                    params={"steps": 25}, guild_id=g, channel_id=c,
                                    requester_name="Ada", daily_quota=(await storage.guilds.settings(g)).daily_quota)
    await storage.jobs.set_message(job.id, message_id)
    await storage.jobs.start(job.id)
    done = await storage.jobs.finish(job.id, [GeneratedImage(png, seed, 512, 512), ...], compute_seconds=3.2)
    png_bytes = await storage.images.get(done.images[0].storage_key)

    # A button press on image 2 of that job, by someone else: the upscale stays the original owner's.
    child = await storage.jobs.create("upscale", presser_id, parent_job_id=job.id, parent_image_index=1)
    chain = await storage.jobs.lineage(child.id)               # [the /imagine, the upscale]
    report = await storage.stats.usage("7d")
    await storage.close()

The ownership rule lives in `storage.jobs.decide_owner`; errors a user can cause are the
`StorageError` subclasses in `storage.errors`, each with a message fit to show. No database driver
error leaves the storage layer: a database that cannot be reached (or a full disk) raises
`StorageUnavailable`, a statement it refuses for good `StorageFault`.
"""

from storage.engine import create_engine, sqlite_url
from storage.errors import (
    IllegalTransition,
    InvalidParent,
    InvalidValue,
    JobNotFound,
    NotAllowed,
    QuotaExceeded,
    StorageError,
    StorageFault,
    StorageUnavailable,
    UserBanned,
)
from storage.images import ImageStore, LocalImageStore
from storage.jobs import LOCAL_USER_ID, TRANSITIONS, decide_owner, new_job_id
from storage.migrate import migrate
from storage.records import (
    ButtonPolicy,
    GeneratedImage,
    GuildSettings,
    ImageRecord,
    JobKind,
    JobRecord,
    JobStatus,
    StoredFile,
    UploadRecord,
    UsageReport,
    UserRecord,
    UserUsage,
    Window,
)
from storage.repository import Storage

__all__ = [
    "LOCAL_USER_ID",
    "TRANSITIONS",
    "ButtonPolicy",
    "GeneratedImage",
    "GuildSettings",
    "IllegalTransition",
    "ImageRecord",
    "ImageStore",
    "InvalidParent",
    "InvalidValue",
    "JobKind",
    "JobNotFound",
    "JobRecord",
    "JobStatus",
    "LocalImageStore",
    "NotAllowed",
    "QuotaExceeded",
    "Storage",
    "StorageError",
    "StorageFault",
    "StorageUnavailable",
    "StoredFile",
    "UploadRecord",
    "UsageReport",
    "UserBanned",
    "UserRecord",
    "UserUsage",
    "Window",
    "create_engine",
    "decide_owner",
    "migrate",
    "new_job_id",
    "sqlite_url",
]
