"""What a job tells back to the people who read it: its prompt with the flags as typed, and all its parameters.

Every front end shows a job's prompt through `prompt_line` (the result's first line, /history, /show, Remix's
prefilled text) and its parameters through `parameters_for` (the ℹ️ button, `kaika info`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.errors import RequestError
from pipeline.images import read_png_metadata
from pipeline.prompt import split_prompt
from storage import Storage
from storage.errors import StorageError
from storage.records import JobRecord

# Where a job drawn from an image prompt keeps the picture's upload in its `params` (see `service.jobs`).
IMAGE_PROMPT = "image_prompt"
# Where a /blend keeps the uploads it mixes (see `service.jobs.BLEND`).
BLENDED = "blend"


def shown_flags(job: JobRecord) -> str:
    """The job's flags as its prompt gave them, less a `--seed` its images were not made with (a re-roll or a
    variation of a prompt with --seed draws a new one)."""
    flags = str(job.params.get("flags", ""))
    try:
        _, typed = split_prompt(flags)
    except RequestError:  # recorded under flags this version does not know: shown as they are
        return flags
    kept = [flag for flag in typed if flag.canonical != "seed" or _same_seed(flag.value, job.seed)]
    return " ".join(map(str, kept))


def _same_seed(value: str, seed: int | None) -> bool:
    return value.isdecimal() and int(value) == seed


def prompt_line(job: JobRecord) -> str:
    """The prompt and its flags, as Midjourney shows them: `a lighthouse --ar 3:2 --seed 11 --s 200`."""
    return " ".join(part for part in (job.prompt, shown_flags(job)) if part)


@dataclass(frozen=True)
class JobParameters:
    """Everything that made a job's images; `seeds[i]` made image i + 1. `model` is what the prompt asked
    (None: the default model), `made_by` the model its images name (None before it has any)."""

    job_id: str
    kind: str
    status: str
    prompt: str
    flags: str
    negative_prompt: str
    model: str | None
    made_by: str | None
    seeds: list[int]
    width: int
    height: int
    steps: int | None
    guidance: float | None
    stylize: int | None
    chaos: int | None
    strength: float | None  # how far an image-to-image job moved from its source; None for a new image
    parent_job_id: str | None
    parent_image_index: int | None  # from 0; shown from 1, as the buttons count
    owner_id: int
    requester_id: int
    # The member's picture an image prompt started from: its upload id, sha256, size and the --iw used.
    image_prompt: dict[str, Any] | None = None
    # The pictures a /blend mixed (and its 🔄), each as its upload id, sha256 and size.
    blended: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def parameters_for(storage: Storage, job: JobRecord) -> JobParameters:
    """`parameters_of(job)` with the model its first image's PNG names (the default model changes; the PNG
    says which one it was)."""
    made_by = None
    pictures = _pictures(job)
    if pictures:
        try:
            data = await storage.images.get(pictures[0].storage_key)
        except (OSError, StorageError):  # its file is gone: the parameters are still worth telling
            data = None
        if data is not None:
            made_by = (await asyncio.to_thread(read_png_metadata, data)).get("model")
    return parameters_of(job, made_by)


def _pictures(job: JobRecord) -> list[Any]:
    """A job's stored PNGs: its images, or a video's thumbnail (its MP4 is beside it)."""
    return [image for image in job.images if not image.storage_key.endswith(".mp4")]


def parameters_of(job: JobRecord, made_by: str | None = None) -> JobParameters:
    """A job's parameters: each image's seed and size once it has images, the request's before."""
    params = job.params
    pictures = _pictures(job)
    if pictures:
        seeds = [image.seed for image in pictures]
        width, height = pictures[0].width, pictures[0].height
    else:
        seeds = [(job.seed or 0) + i for i in range(int(params.get("num_images", 1)))]
        width, height = int(params.get("width", 0)), int(params.get("height", 0))
    image_to_image = params.get("mode", "txt2img") != "txt2img"
    return JobParameters(
        job_id=job.id,
        kind=str(job.kind),
        status=str(job.status),
        prompt=job.prompt,
        flags=shown_flags(job),
        negative_prompt=job.negative_prompt,
        model=job.model,
        made_by=made_by,
        seeds=seeds,
        width=width,
        height=height,
        steps=params.get("steps"),
        guidance=params.get("guidance"),
        stylize=params.get("stylize"),
        chaos=params.get("chaos"),
        strength=params.get("strength") if image_to_image else None,
        parent_job_id=job.parent_job_id,
        parent_image_index=job.parent_image_index,
        owner_id=job.owner_id,
        requester_id=job.requester_id,
        image_prompt=params.get(IMAGE_PROMPT),
        blended=params.get(BLENDED),
    )


def describe_parameters(parameters: JobParameters) -> list[str]:
    """The parameters as lines of plain text, the prompt's first (the command line prints these; the bot
    shows the same facts with the prompt escaped)."""
    p = parameters
    lines = [f"Job {p.job_id}: {p.kind}, {p.status}"]
    lines.append(f"Prompt: {' '.join(part for part in (p.prompt, p.flags) if part)}")
    if p.negative_prompt:
        lines.append(f"Negative prompt: {p.negative_prompt}")
    lines += settings_lines(p)
    return lines


def settings_lines(p: JobParameters) -> list[str]:
    """Seeds, model, steps, guidance, size and lineage, a line each (no member text in them)."""
    seeds = ", ".join(f"#{i} {seed}" for i, seed in enumerate(p.seeds, start=1))
    lines = [
        f"Seeds: {seeds}",
        f"Model: {p.made_by or p.model or 'default'}",
        f"Steps: {p.steps}, guidance: {p.guidance} (--stylize {p.stylize}, --chaos {p.chaos})",
        f"Size: {p.width}x{p.height}" + ("" if p.strength is None else f", strength {p.strength}"),
    ]
    if p.parent_job_id is not None:
        image = "" if p.parent_image_index is None else f", image #{p.parent_image_index + 1}"
        lines.append(f"From job {p.parent_job_id}{image}")
    if p.image_prompt is not None:
        picture = p.image_prompt
        lines.append(
            f"From an uploaded picture, {picture['width']}x{picture['height']} (upload {picture['upload']}, "
            f"sha256 {str(picture['sha256'])[:12]}…), --iw {picture['iw']:g}"
        )
    if p.blended:
        pictures = ", ".join(
            f"{item['width']}x{item['height']} (upload {item['upload']})" for item in p.blended
        )
        lines.append(f"Blended from {len(p.blended)} uploaded pictures: {pictures}")
    return lines
