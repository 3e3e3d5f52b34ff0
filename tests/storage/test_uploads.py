"""Uploads: a member's picture kept in the image store under its owner, swept only once nothing names it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from storage import GeneratedImage, Storage


async def test_an_upload_is_kept_under_its_owner_and_read_back(storage: Storage) -> None:
    upload = await storage.uploads.add(42, b"png bytes", 30, 20, owner_name="Ada")
    assert (upload.owner_id, upload.width, upload.height, upload.byte_size) == (42, 30, 20, 9)
    assert await storage.uploads.get(upload.id) == upload
    assert await storage.uploads.data(upload) == b"png bytes"
    assert (await storage.users.get(42)).display_name == "Ada"  # type: ignore[union-attr]
    await storage.uploads.add(42, b"another", 8, 8)
    await storage.uploads.add(7, b"someone else's", 8, 8)
    assert await storage.uploads.count_for(42) == 2
    assert await storage.uploads.get("no-such-upload") is None


async def test_the_orphan_sweep_keeps_uploaded_files(storage: Storage, tmp_path: Path) -> None:
    upload = await storage.uploads.add(42, b"kept", 8, 8)
    orphan = await storage.images.put(b"nobody's")
    for key in (upload.storage_key, orphan.key):
        os.utime(tmp_path / "images" / key, (0, 0))
    assert await storage.sweep_orphans(timedelta(0)) == [orphan.key]
    assert await storage.uploads.data(upload) == b"kept"


async def test_discarding_an_upload_removes_its_row_and_its_file_unless_another_row_names_it(
    storage: Storage,
) -> None:
    alone = await storage.uploads.add(42, b"alone", 8, 8)
    await storage.uploads.discard(alone.id)
    assert await storage.uploads.get(alone.id) is None
    assert not await storage.images.exists(alone.storage_key)
    assert await storage.uploads.count_for(42) == 0

    first = await storage.uploads.add(42, b"twice", 8, 8)
    second = await storage.uploads.add(7, b"twice", 8, 8)
    assert first.storage_key == second.storage_key  # content addressed: one file
    await storage.uploads.discard(second.id)
    assert await storage.uploads.data(first) == b"twice"

    job = await storage.jobs.create("imagine", 42)
    await storage.jobs.start(job.id)
    await storage.jobs.finish(job.id, [GeneratedImage(b"made", 1, 8, 8)], 1.0)
    same_as_image = await storage.uploads.add(42, b"made", 8, 8)
    await storage.uploads.discard(same_as_image.id)
    assert await storage.images.exists(same_as_image.storage_key)  # the job's image stays
    await storage.uploads.discard("no-such-upload")  # nothing to do
