"""What Kaika keeps on disk (members' prompts, ids and images) is readable by its own account only."""

from __future__ import annotations

import stat
from pathlib import Path

from storage import Storage, sqlite_url


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_and_images_are_private_to_the_account_kaika_runs_as(tmp_path):
    data = tmp_path / "data"
    storage = await Storage.open(sqlite_url(data), data / "images")
    try:
        stored = await storage.images.put(b"\x89PNG not really", ".png")
        database = data / "kaika.db"
        assert mode(database) == 0o600 and mode(data) == 0o700
        assert all(mode(sidecar) == 0o600 for sidecar in data.glob("kaika.db-*"))  # WAL and shared memory
        image = data / "images" / stored.key
        assert mode(image) == 0o600 and mode(image.parent) == 0o700
    finally:
        await storage.close()


async def test_a_database_left_readable_by_everyone_is_made_private_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "kaika.db").touch(mode=0o644)
    (data / "kaika.db").chmod(0o644)
    storage = await Storage.open(sqlite_url(data), data / "images")
    await storage.close()
    assert mode(data / "kaika.db") == 0o600
