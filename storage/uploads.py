"""Uploads: pictures members hand in (image prompts), each file in the image store and a row naming its owner."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import delete, func, select

from storage.database import Database, storage_errors
from storage.images import ImageStore
from storage.models import Image, Upload
from storage.records import UploadRecord


def new_upload_id() -> str:
    return secrets.token_urlsafe(9)


class UploadRepository:
    """Reached as `storage.uploads`. The file is written before its row (as a job's images are), so a crash
    leaves at most a file the orphan sweep removes, never a row pointing at nothing."""

    def __init__(self, db: Database, images: ImageStore, new_id: Callable[[], str] = new_upload_id) -> None:
        self._db = db
        self._images = images
        self._new_id = new_id

    async def add(
        self, owner_id: int, data: bytes, width: int, height: int, *, owner_name: str | None = None
    ) -> UploadRecord:
        """Keep `data` (an accepted picture, PNG) as `owner_id`'s upload."""
        with storage_errors():
            stored = await self._images.put(data, ".png")
        now = self._db.now()
        async with self._db.write() as session:
            await self._db.ensure_user(session, owner_id, owner_name, now)
            upload = Upload(
                id=self._new_id(),
                owner_id=owner_id,
                created_at=now,
                width=width,
                height=height,
                storage_key=stored.key,
                sha256=stored.sha256,
                byte_size=stored.byte_size,
            )
            session.add(upload)
            await session.flush()
            return _record(upload)

    async def get(self, upload_id: str) -> UploadRecord | None:
        async with self._db.read() as session:
            upload = await session.get(Upload, upload_id)
            return None if upload is None else _record(upload)

    async def data(self, upload: UploadRecord) -> bytes:
        """The picture's bytes; FileNotFoundError when its file is gone."""
        with storage_errors():
            return await self._images.get(upload.storage_key)

    async def count_for(self, owner_id: int) -> int:
        async with self._db.read() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(Upload).where(Upload.owner_id == owner_id)
                )
                or 0
            )

    async def discard(self, upload_id: str) -> None:
        """Take back an upload whose job was refused: its row, and its file unless another row names it."""
        async with self._db.write() as session:
            upload = await session.get(Upload, upload_id)
            if upload is None:
                return
            key = upload.storage_key
            await session.execute(delete(Upload).where(Upload.id == upload_id))
            still_used = await session.scalar(
                select(func.count()).select_from(Upload).where(Upload.storage_key == key)
            ) or await session.scalar(select(func.count()).select_from(Image).where(Image.storage_key == key))
        if not still_used:
            with storage_errors():
                await self._images.delete(key)


def _record(upload: Upload) -> UploadRecord:
    return UploadRecord(
        id=upload.id,
        owner_id=upload.owner_id,
        created_at=upload.created_at,
        width=upload.width,
        height=upload.height,
        storage_key=upload.storage_key,
        sha256=upload.sha256,
        byte_size=upload.byte_size,
    )
