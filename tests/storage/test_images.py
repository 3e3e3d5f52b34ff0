"""LocalImageStore: content-addressed, atomic, safe keys."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import ImageStore, LocalImageStore


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_put_stores_by_sha256_and_reads_back(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    stored = await store.put(b"pixels")
    digest = hashlib.sha256(b"pixels").hexdigest()
    assert (stored.key, stored.sha256, stored.byte_size) == (f"{digest[:2]}/{digest}.png", digest, 6)
    assert await store.get(stored.key) == b"pixels"
    assert await store.exists(stored.key)
    assert isinstance(store, ImageStore)


async def test_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    first = await store.put(b"same")
    second = await store.put(b"same")
    assert first == second
    assert files_under(tmp_path) == [tmp_path / first.key]


async def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path: Path, monkeypatch) -> None:
    store = LocalImageStore(tmp_path)

    def broken_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"never")
    assert files_under(tmp_path) == []


async def test_delete_and_missing_keys(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    stored = await store.put(b"bye")
    await store.delete(stored.key)
    await store.delete(stored.key)  # already gone: not an error
    assert not await store.exists(stored.key)
    assert await store.modified_at(stored.key) is None
    with pytest.raises(FileNotFoundError):
        await store.get(stored.key)


@pytest.mark.parametrize("key", ["../etc/passwd", "ab/../../x", "/abs/path", "ab/c/d.png", "", "zz/x.png"])
async def test_keys_that_could_escape_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalImageStore(tmp_path)
    with pytest.raises(ValueError, match="not an image key"):
        await store.get(key)
    with pytest.raises(ValueError, match="not an image key"):
        await store.delete(key)


async def test_keys_older_than_lists_old_files_including_leftover_temporaries(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    old = await store.put(b"old")
    new = await store.put(b"new")
    leftover = tmp_path / old.key[:2] / ".crashed.tmp"
    leftover.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / old.key, (two_hours_ago, two_hours_ago))
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    assert await store.keys_older_than(cutoff) == sorted([old.key, f"{old.key[:2]}/.crashed.tmp"])
    assert new.key not in await store.keys_older_than(cutoff)
    assert await LocalImageStore(tmp_path / "absent").keys_older_than(cutoff) == []
