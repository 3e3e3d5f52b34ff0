"""Whether a folder a setting or an option names can hold Kaika's files, checked before any work starts."""

from __future__ import annotations

import tempfile
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot take files, or None when it is a folder this process can write in, or create.

    Nothing is created: the nearest part of the path that exists must be a folder that takes a file.
    The answer is a phrase such as "/srv/kaika is a file, not a folder." (blocking: call it off the loop).
    """
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder."
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror})."
    return None
