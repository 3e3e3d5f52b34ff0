"""What every front end opens from Settings: storage, the executor and the job service over them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.executor.base import Executor
from pipeline.prompt import PromptDefaults
from service.jobs import JobService
from service.settings import Settings
from storage import Storage


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

    @property
    def model_names(self) -> list[str]:
        """Read from the executor each time: fleet workers announce their models after the bot starts."""
        return list(self.executor.model_names)

    @classmethod
    async def open(cls, settings: Settings, executor: Executor | None = None) -> Services:
        """Storage and the executor from `settings`; `executor`, when given, is used (started) instead."""
        storage = await Storage.open(settings.resolved_database_url, settings.data_dir / "images")
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
            defaults=PromptDefaults(steps=settings.model_steps or None, guidance=settings.model_guidance),
        )
        return cls(storage, executor, jobs)

    async def close(self) -> None:
        await self.jobs.close()
        await self.executor.close()
        await self.storage.close()
