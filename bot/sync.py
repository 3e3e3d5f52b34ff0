"""Syncing the command tree with Discord only when it changed.

Discord rate-limits command syncs and a sync makes clients refetch every command, so a start whose
commands are the ones already synced skips it. What was synced last is remembered as a hash of the
tree's JSON payload in a file per application in the data folder; deleting the file forces a sync.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path

from discord import app_commands

log = logging.getLogger(__name__)


def tree_hash(tree: app_commands.CommandTree) -> str:
    """The SHA-256 of the global commands' payload, as `tree.sync()` would send it."""
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def synced_hash_file(data_dir: Path, application_id: int | None) -> Path:
    return data_dir / f"synced-commands-{application_id}.sha256"


async def sync_if_changed(tree: app_commands.CommandTree, data_dir: Path) -> bool:
    """Sync the tree's global commands unless this application last synced the very same; True if it synced."""
    digest = tree_hash(tree)
    record = synced_hash_file(data_dir, tree.client.application_id)
    if await asyncio.to_thread(_read, record) == digest:
        log.info("Application commands unchanged since the last sync; not syncing")
        return False
    await tree.sync()
    log.info("Synced %d application commands", len(tree.get_commands()))
    try:
        await asyncio.to_thread(_write, record, digest)
    except OSError as error:  # the next start syncs again, which is all it costs
        log.warning("Could not remember the synced commands in %s: %s", record, error)
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _write(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(digest + "\n")
    os.replace(temporary, path)
