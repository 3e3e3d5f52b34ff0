"""Errors of the command line's own arguments; like the service's, `str(error)` is the one line shown."""

from __future__ import annotations

from pathlib import Path

from service.errors import UserError
from storage.records import JobRecord


class OutFolderError(UserError):
    """`--out` names something that is not a folder, or a folder that cannot be written or created."""

    def __init__(self, out_dir: Path, problem: str) -> None:
        super().__init__(f"--out {out_dir}: {problem}")


class NoSuchImage(UserError):
    """INDEX names an image the job does not have."""

    def __init__(self, job: JobRecord, number: int) -> None:
        count = len(job.images)
        allowed = "1" if count == 1 else f"1 to {count}"
        super().__init__(
            f"Job `{job.id}` has {count} image{'' if count == 1 else 's'}: INDEX is {allowed}, not {number}."
        )
