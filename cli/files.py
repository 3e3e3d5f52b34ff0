"""What a job command leaves behind: the `--out` folder checked before the job runs, the PNGs, the printout.

Files are named `<stem>-<n>.png` for each image and `<stem>-grid.png` for the grid of a job with several
images, where the stem is the prompt's slug, the job's seed and the job id (`a-lighthouse-at-dusk-7-<job id>`),
so every job writes files of its own and any number of jobs can share one folder. A video job writes
`<stem>.mp4` and its first frame as `<stem>-thumbnail.png`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cli.errors import OutFolderError
from service.folders import folder_problem

if TYPE_CHECKING:
    from pipeline.request import GenerationRequest
    from service.jobs import Outcome


def check_out_folder(out_dir: Path) -> None:
    """Raise OutFolderError unless `out_dir` is a folder this process can write in, or can create
    (`service.folders.folder_problem`); nothing is created."""
    problem = folder_problem(out_dir)
    if problem is not None:
        raise OutFolderError(out_dir, problem)


@dataclass(frozen=True)
class Written:
    """A finished job and the files written for it, as the command prints them."""

    job_id: str
    kind: str
    seed: int | None
    width: int
    height: int
    model: str | None
    images: list[Path]
    grid: Path | None
    video: Path | None = None  # a video job's MP4 (`images` then holds its PNG thumbnail)

    def as_json(self) -> str:
        """One JSON object: job_id, kind, seed, width, height, model, images (paths) and grid (a path or null)."""
        return json.dumps(
            {
                "job_id": self.job_id,
                "kind": self.kind,
                "seed": self.seed,
                "width": self.width,
                "height": self.height,
                "model": self.model,
                "images": [str(path) for path in self.images],
                "grid": None if self.grid is None else str(self.grid),
                "video": None if self.video is None else str(self.video),
            }
        )

    def as_lines(self) -> str:
        """The job id, then a path a line: the grid or the video first (if any), then each image."""
        paths = ([] if self.grid is None else [self.grid]) + ([] if self.video is None else [self.video])
        paths += self.images
        return "\n".join([self.job_id, *map(str, paths)])


def job_file_stem(prompt: str, seed: int | None, job_id: str) -> str:
    """A readable file-name stem unique to the job, such as `a-lighthouse-at-dusk-7-LtG6segnPSQe`."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].rstrip("-") or "image"
    return f"{slug}-{seed or 0}-{job_id}"


def write_outcome(outcome: Outcome, request: GenerationRequest, out_dir: Path) -> Written:
    """Write a finished job's images (the PNGs storage keeps, with their metadata) and, when it has several,
    their display grid into `out_dir`; each file under a temporary name first, so no one sees half a PNG."""
    from pipeline.images import display_grid, encode_png, image_metadata

    job = outcome.job
    stem = job_file_stem(job.prompt, job.seed, job.id)
    model = outcome.result.model_id if outcome.result is not None else job.model
    files: list[tuple[Path, bytes]] = []
    grid: Path | None = None
    video: Path | None = None
    if outcome.video is not None:  # an MP4 and its first frame
        video = out_dir / f"{stem}.mp4"
        images = [out_dir / f"{stem}-thumbnail.png"]
        files = [(video, outcome.video), (images[0], outcome.images[-1])]
    elif len(outcome.images) > 1:
        grid = out_dir / f"{stem}-grid.png"
        if outcome.result is not None:
            metadata = image_metadata(
                request, seed=request.seed, model_id=outcome.result.model_id, job_id=job.id
            )
            files.append((grid, encode_png(display_grid(outcome.result.images), metadata)))
        else:
            files.append((grid, outcome.grid))
    if video is None:
        images = [out_dir / f"{stem}-{number}.png" for number in range(1, len(outcome.images) + 1)]
        files.extend(zip(images, outcome.images, strict=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in files:
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    first = job.images[0]
    return Written(job.id, str(job.kind), job.seed, first.width, first.height, model, images, grid, video)
