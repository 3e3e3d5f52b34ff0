"""/describe for every front end: four prompts for a member's picture, recorded as a `describe` job.

The describer (`DESCRIBER`: a transformers image-to-text model, or the demo scene checker when empty;
`pipeline.describe`) is loaded when first asked for, off the event loop, and needs no image model: the command
line describes without loading one. Pressing one of the prompts is a job button (`ButtonAction.DESCRIBED`),
which `JobService.press` turns into an /imagine.
"""

from __future__ import annotations

import asyncio

from pipeline.describe import Describer, open_describer
from pipeline.uploads import CleanUpload
from service.admission import Place, Requester, daily_quota
from service.jobs import upload_params
from storage import Storage
from storage.records import JobKind, JobRecord


class DescribeService:
    def __init__(self, storage: Storage, describer: str = "") -> None:
        self.storage = storage
        self.describer_source = describer
        self._describer: Describer | None = None
        self._lock = asyncio.Lock()

    async def describer(self) -> Describer:
        """The describer `DESCRIBER` names, loaded (off the event loop) when first needed."""
        async with self._lock:
            if self._describer is None:
                self._describer = await asyncio.to_thread(open_describer, self.describer_source)
            return self._describer

    async def describe(self, requester: Requester, place: Place, image: CleanUpload) -> JobRecord:
        """Four prompts for `image` (checked by `JobService.check_upload`), recorded as a finished `describe` job
        that keeps them (`params["prompts"]`) and the picture as the requester's upload, so the buttons that
        run them work after a restart. It counts toward the daily quota; a ban or the quota refuses it, and
        nothing is kept."""
        settings = await self.storage.guilds.settings(place.guild_id or 0)
        describer = await self.describer()
        loop = asyncio.get_running_loop()
        started = loop.time()
        prompts = await asyncio.to_thread(describer.describe, image.image())
        seconds = loop.time() - started
        upload = await self.storage.uploads.add(
            requester.user_id, image.png, image.width, image.height, owner_name=requester.name
        )
        try:
            job = await self.storage.jobs.create(
                JobKind.DESCRIBE,
                requester.user_id,
                requester_name=requester.name,
                daily_quota=daily_quota(requester, settings),
                guild_id=place.guild_id,
                channel_id=place.channel_id,
                front_end=place.front_end,
                prompt=prompts[0],
                params={"prompts": prompts, "describer": describer.name, "picture": upload_params(upload)},
            )
        except BaseException:
            await self.storage.uploads.discard(upload.id)
            raise
        await self.storage.jobs.start(job.id)
        return await self.storage.jobs.finish(job.id, [], seconds)
