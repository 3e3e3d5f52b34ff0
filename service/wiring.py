"""What every front end opens from Settings: storage, the executor and the job service over them."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from pipeline.executor.base import Executor
from pipeline.prompt import PromptDefaults
from service.admission import FastTime
from service.describing import DescribeService
from service.errors import SettingError
from service.folders import folder_problem
from service.jobs import JobService
from service.metrics import JobMetrics
from service.settings import Settings
from storage import Storage

log = logging.getLogger(__name__)

# The password of a URL such as postgresql+asyncpg://kaika:s3cret@db/kaika, never shown.
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@]*@")


async def open_storage(settings: Settings) -> Storage:
    """Storage in DATA_DIR and DATABASE_URL, migrated; or a SettingError naming the setting to fix.

    Any failure to open the database at start is the setting's to fix (unreachable server, wrong
    credentials or driver, a file that cannot be written), so it is one line; LOG_LEVEL=DEBUG logs
    its traceback.
    """
    problem = await asyncio.to_thread(folder_problem, settings.data_dir)
    if problem is not None:
        raise SettingError(
            f"DATA_DIR={settings.data_dir}: {problem} Set DATA_DIR to a folder Kaika can create and write."
        )
    url = settings.resolved_database_url
    try:
        storage = await Storage.open(
            url, settings.data_dir / "images", video_quota_weight=settings.video_quota_weight
        )
    except Exception as error:
        log.debug("Opening the database at %s failed", hide_password(url), exc_info=True)
        if not settings.database_url:
            raise SettingError(
                f"DATA_DIR={settings.data_dir}: the database file in it cannot be opened ({_reason(error)})."
            ) from error
        raise SettingError(
            f"DATABASE_URL={hide_password(url)}: the database cannot be opened ({_reason(error)}); check "
            "that it runs and the URL's host, port, user, password and database name "
            "(postgresql+asyncpg://user:password@host:5432/kaika)."
        ) from error
    return storage


def hide_password(url: str) -> str:
    """`url` with its password (if any) shown as ***."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def _reason(error: BaseException) -> str:
    """What went wrong in a few words: the first line of the driver's own error when there is one."""
    cause = error
    for _ in range(5):  # a DBAPIError's driver error, or the error a wrapper was raised from
        inner = getattr(cause, "orig", None) or cause.__cause__
        if not isinstance(inner, Exception):
            break
        cause = inner
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


async def open_executor(settings: Settings) -> Executor:
    """The executor EXECUTOR names, loaded (local) or connected (celery), and started."""
    if settings.executor == "celery":
        from pipeline.executor.celery import CeleryExecutor

        executor: Executor = CeleryExecutor(
            settings.fleet_config(),
            default_model=settings.model,
            model_sources=settings.named_models,
            in_flight=settings.celery_in_flight,
            preview_every=settings.preview_every,
        )
    else:
        from pipeline.executor.local import LocalExecutor

        executor = await LocalExecutor.load(
            {None: settings.model, **settings.named_models},
            device=settings.device,
            dtype=settings.dtype,
            loras=settings.loras,
            upscaler=settings.upscaler,
            memory_gb=settings.model_memory_gb,
            config=settings.single_file_config,
            video=settings.video_model,
            max_batch=settings.max_batch,
            preview_every=settings.preview_every,
        )
    await executor.start()
    return executor


@dataclass
class Services:
    storage: Storage
    executor: Executor
    jobs: JobService
    describing: DescribeService

    @property
    def metrics(self) -> JobMetrics:
        """The job metrics of this process (/metrics), in a registry of their own."""
        return self.jobs.metrics

    @property
    def model_names(self) -> list[str]:
        """Read from the executor each time: fleet workers announce their models after the bot starts."""
        return list(self.executor.model_names)

    @classmethod
    async def open(cls, settings: Settings, executor: Executor | None = None) -> Services:
        """Storage and the executor from `settings`; `executor`, when given, is used (started) instead."""
        storage = await open_storage(settings)
        try:
            if executor is None:
                executor = await open_executor(settings)
            else:
                await executor.start()
        except BaseException:
            await storage.close()
            raise
        jobs = JobService(
            storage,
            executor,
            max_queue=settings.max_queue,
            max_jobs_per_user=settings.max_jobs_per_user,
            max_jobs_per_prompt=settings.max_jobs_per_prompt,
            defaults=PromptDefaults(steps=settings.model_steps or None, guidance=settings.model_guidance),
            max_upload_bytes=round(settings.max_upload_mb * 1024 * 1024),
            max_upload_pixels=settings.max_upload_pixels,
            video_frames=settings.video_frames,
            video_max_bytes=round(settings.video_max_mb * 1024 * 1024),
            fast_time=FastTime(frozenset(settings.fast_roles), settings.fast_minutes_per_day * 60),
            metrics=JobMetrics(queue_depth=executor.queue_depth, models=settings.named_models),
        )
        return cls(storage, executor, jobs, DescribeService(storage, settings.describer))

    async def close(self) -> None:
        await self.jobs.close()
        await self.executor.close()
        await self.storage.close()
