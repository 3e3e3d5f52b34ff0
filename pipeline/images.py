"""Image handling around generation: 2x2 grids, PNG text metadata, size-limited encoding. Pure PIL."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from PIL import Image, PngImagePlugin

if TYPE_CHECKING:
    from pipeline.request import GenerationRequest

GRID_COLUMNS = 2
# Cells of a grid shown to a person are at least this many pixels a side (small native sizes are enlarged).
DISPLAY_MIN_SIDE = 256


def compose_grid(images: Sequence[Image.Image], columns: int = GRID_COLUMNS) -> Image.Image:
    """Images in reading order on a grid `columns` wide; every cell has the first image's size."""
    if not images:
        raise ValueError("a grid needs at least one image")
    cell_w, cell_h = images[0].size
    rows = math.ceil(len(images) / columns)
    grid = Image.new("RGB", (cell_w * min(columns, len(images)), cell_h * rows))
    for index, image in enumerate(images):
        if image.size != (cell_w, cell_h):
            image = image.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
        grid.paste(image.convert("RGB"), ((index % columns) * cell_w, (index // columns) * cell_h))
    return grid


def request_metadata(request: GenerationRequest, *, model_id: str) -> dict[str, str]:
    """What every image of a request shares: prompt, negative prompt, steps, guidance, size, model, mode."""
    metadata = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "steps": str(request.steps),
        "guidance": f"{request.guidance:g}",
        "size": f"{request.width}x{request.height}",
        "model": model_id,
        "mode": str(request.mode),
    }
    if request.chaos:
        metadata["chaos"] = str(request.chaos)
    return metadata


def image_metadata(
    request: GenerationRequest, *, seed: int, model_id: str, job_id: str | None = None
) -> dict[str, str]:
    """The text stored in an image's PNG: enough to reproduce it, plus the common `parameters` line."""
    metadata = request_metadata(request, model_id=model_id)
    metadata["seed"] = str(seed)
    if job_id is not None:
        metadata["job_id"] = job_id
    # The one-line form other Stable Diffusion tools read and write.
    negative = f"\nNegative prompt: {request.negative_prompt}" if request.negative_prompt else ""
    metadata["parameters"] = (
        f"{request.prompt}{negative}\nSteps: {request.steps}, CFG scale: {request.guidance:g}, "
        f"Seed: {seed}, Size: {metadata['size']}, Model: {model_id}"
    )
    return metadata


def encode_png(image: Image.Image, metadata: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes with `metadata` as text chunks (UTF-8 safe)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_png_metadata(data: bytes) -> dict[str, str]:
    """The text chunks of PNG bytes (empty for other formats)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {key: str(value) for key, value in getattr(image, "text", {}).items()}


def decode_image(data: bytes) -> Image.Image:
    """RGB image from encoded bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def fit_to_bytes(
    image: Image.Image, limit: int, metadata: Mapping[str, str] | None = None
) -> tuple[bytes, str]:
    """Encoded bytes of at most `limit` (the front end's upload limit) and their format ("png" or "jpeg").

    PNG (with metadata) when it fits; otherwise JPEG at falling quality, then smaller sizes.
    """
    data = encode_png(image, metadata)
    if len(data) <= limit:
        return data, "png"
    rgb = image.convert("RGB")
    while True:
        for quality in (92, 85, 75, 60):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limit:
                return buffer.getvalue(), "jpeg"
        if min(rgb.size) <= 16:
            raise ValueError(f"cannot encode the image in {limit} bytes")
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), Image.Resampling.LANCZOS)


def upscale_for_display(image: Image.Image, min_side: int = 512) -> Image.Image:
    """Enlarge small images (Lanczos, whole factor) so chat clients do not show a thumbnail; else unchanged."""
    factor = math.ceil(min_side / max(1, min(image.size)))
    if factor <= 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)


def display_grid(images: Sequence[Image.Image]) -> Image.Image:
    """The 2x2 grid a person sees: `compose_grid` of the images, each enlarged to `DISPLAY_MIN_SIDE` if smaller."""
    return compose_grid([upscale_for_display(image, DISPLAY_MIN_SIDE) for image in images])


def display_png(png: bytes) -> bytes:
    """One image as a person sees it: enlarged like a grid's cells when smaller than `DISPLAY_MIN_SIDE` (the
    stored image, and what the command line writes, keep the size the model made)."""
    image = decode_image(png)
    if min(image.size) >= DISPLAY_MIN_SIDE:
        return png
    return encode_png(upscale_for_display(image, DISPLAY_MIN_SIDE))
