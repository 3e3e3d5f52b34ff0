"""Helpers of the command-line tests: what a run printed, and the storage the commands use."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.images import encode_png
from pipeline.request import GenerationRequest
from service.jobs import request_params
from service.settings import Settings
from storage import LOCAL_USER_ID, Storage
from storage.records import GeneratedImage, JobKind, JobRecord, JobStatus

BOT_USER = 42  # a Discord member whose jobs the bot recorded
JSON_KEYS = {"job_id", "kind", "seed", "width", "height", "model", "images", "grid"}


@dataclass(frozen=True)
class Run:
    """What one `kaika …` left: its exit status and what it printed."""

    status: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """stdout as the one JSON object --json prints (nothing else may be there)."""
        assert self.status == 0, self.err
        printed = json.loads(self.out)
        assert set(printed) == JSON_KEYS
        return printed

    def error_line(self, command: str) -> str:
        """The message of a refusal, checked to be all that was printed: one line on stderr, status 2.

        (Every mistake of these commands is found before a model loads, so no loading progress either.)
        """
        assert (self.status, self.out) == (2, ""), (self.status, self.out, self.err)
        prefix = f"kaika {command}: "
        assert self.err.startswith(prefix) and self.err.count("\n") == 1 and self.err.endswith("\n"), self.err
        return self.err.removeprefix(prefix).removesuffix("\n")


def recorded(data_dir: Path, read: Any) -> Any:
    """`read(storage)` on the storage the commands use (DATA_DIR `data_dir`, SQLite)."""

    async def run() -> Any:
        settings = Settings(_env_file=None, data_dir=data_dir)
        storage = await Storage.open(settings.resolved_database_url, data_dir / "images")
        try:
            return await read(storage)
        finally:
            await storage.close()

    return asyncio.run(run())


def job(data_dir: Path, job_id: str) -> JobRecord:
    record = recorded(data_dir, lambda storage: storage.jobs.get(job_id))
    assert record is not None
    return record


def all_jobs(data_dir: Path) -> list[tuple[str, str]]:
    """(id, status) of every job any user has, deleted ones included: what a refusal must leave alone."""

    async def read(storage: Storage) -> list[tuple[str, str]]:
        users = {LOCAL_USER_ID, BOT_USER}
        jobs = [j for user in users for j in await storage.jobs.recent_for_user(user, limit=1000)]
        return sorted((j.id, str(j.status)) for j in jobs)

    return recorded(data_dir, read)


def bot_job(data_dir: Path, status: JobStatus = JobStatus.DONE, *, side: int = 64) -> JobRecord:
    """A 4-image /imagine recorded as the bot records one, for user BOT_USER in a guild channel."""
    request = GenerationRequest(prompt="a red circle", seed=5, width=side, height=side, steps=2)

    async def add(storage: Storage) -> JobRecord:
        record = await storage.jobs.create(
            JobKind.IMAGINE,
            BOT_USER,
            requester_name="bob",
            guild_id=1,
            channel_id=2,
            prompt=request.prompt,
            params=request_params(request),
            seed=request.seed,
        )
        if status is JobStatus.QUEUED:
            return record
        record = await storage.jobs.start(record.id)
        if status is JobStatus.RUNNING:
            return record
        if status is JobStatus.FAILED:
            return await storage.jobs.fail(record.id, "out of memory")
        png = encode_png(Image.new("RGB", (side, side), "red"))
        images = [GeneratedImage(png, seed, side, side) for seed in request.seeds]
        return await storage.jobs.finish(record.id, images, 1.0)

    return recorded(data_dir, add)
