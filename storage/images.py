"""Where image files live. The database keeps only the key an `ImageStore` hands back.

`LocalImageStore` keeps files in a folder, named by their sha256, so the same bytes are stored once.
A second implementation (S3-compatible) only needs the five methods of `ImageStore`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.engine import PRIVATE_FOLDER
from storage.records import StoredFile

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9A-Za-z._-]+$")


@runtime_checkable
class ImageStore(Protocol):
    async def put(self, data: bytes, suffix: str = ".png") -> StoredFile:
        """Store `data` durably and return its key; when this returns, the file is safely there."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under `key`; FileNotFoundError if there are none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    async def modified_at(self, key: str) -> datetime | None:
        """When `key` was last written (or re-put); None if it does not exist."""
        ...

    async def keys_older_than(self, cutoff: datetime) -> list[str]:
        """Every key (and leftover temporary file) last written before `cutoff`, for the orphan sweep."""
        ...


class LocalImageStore:
    """Files under `root`, as `ab/abcdef….png` (the first two hex digits of the sha256 shard the folder).

    Writes go to a temporary file in the target folder, are fsynced, then renamed into place with
    `os.replace`, so a reader or a crash never sees half a file. All file I/O runs in a worker thread.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file for `key`; ValueError for anything that is not a key this store made."""
        if not _KEY.match(key):
            raise ValueError(f"not an image key: {key!r}")
        return self.root / key

    async def put(self, data: bytes, suffix: str = ".png") -> StoredFile:
        return await asyncio.to_thread(self._put, data, suffix)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def modified_at(self, key: str) -> datetime | None:
        path = self.path(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        return datetime.fromtimestamp(stat.st_mtime, UTC)

    async def keys_older_than(self, cutoff: datetime) -> list[str]:
        return await asyncio.to_thread(self._keys_older_than, cutoff.timestamp())

    def _put(self, data: bytes, suffix: str) -> StoredFile:
        if not re.fullmatch(r"(\.[0-9A-Za-z]{1,8})?", suffix):
            raise ValueError(f"not a file suffix: {suffix!r}")
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest}{suffix}"
        target = self.path(key)
        stored = StoredFile(key=key, sha256=digest, byte_size=len(data))
        if target.is_file() and target.stat().st_size == len(data):
            os.utime(target)  # a fresh reference: keep it out of the next orphan sweep's grace window
            return stored
        target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)  # files: mkstemp's 0600
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)
        return stored

    def _keys_older_than(self, cutoff_timestamp: float) -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for shard in self.root.iterdir():
            if not (shard.is_dir() and re.fullmatch(r"[0-9a-f]{2}", shard.name)):
                continue
            for file in shard.iterdir():
                if file.is_file() and file.stat().st_mtime < cutoff_timestamp:
                    keys.append(f"{shard.name}/{file.name}")
        return sorted(keys)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
