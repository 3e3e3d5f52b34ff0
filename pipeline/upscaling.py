"""Enlarging images with a GAN upscaler (the UPSCALER setting's ESRGAN-family model, or the demo model's own).

`enlarge` is the one way Kaika enlarges with a GAN: the demo model's 64 px images to the 256 px members
see, Upscale (Subtle / Creative) to twice an image's size, and (`enlarge_all`, batched) a video's frames made
below the image's size. An upscaler here is any callable module
taking a (1, 3, H, W) tensor in [0, 1] and returning the image `scale` times larger: a spandrel model
descriptor or `pipeline.demo.upscaler.RRDBNet`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from pipeline.images import decode_image, encode_png
from pipeline.request import UPSCALE_SUBTLE

if TYPE_CHECKING:
    from pipeline.families import ModelFamily
    from pipeline.request import GenerationRequest

# At most this many GAN passes: a 4x model reaches 256x from one side of a few pixels.
MAX_PASSES = 4
# Input pixels added around an image (copies of its edge) before a GAN pass, then cut off.
BORDER = 8
# Input pixels one GAN pass takes at most, summed over a batch of images: a demo video's 8 frames of 64 px
# in one pass; frames of a real video model a few at a time, within a GPU's memory.
BATCH_PIXELS = 2**16


def upscaler_scale(upscaler: Any) -> int:
    """How many times larger the upscaler's output is (spandrel and RRDBNet both say `scale`)."""
    return int(getattr(upscaler, "scale", 4) or 4)


def enlarge(upscaler: Any, image: Image.Image, width: int, height: int, device: torch.device) -> Image.Image:
    """`image` at `width` x `height`: passed through the GAN until it is at least that large, then brought
    to the exact size with Lanczos (a 4x model's output is resized down to a 2x upscale's size).

    An image already at least that large is only resized.
    """
    return enlarge_all(upscaler, [image], width, height, device)[0]


def enlarge_all(
    upscaler: Any, images: list[Image.Image], width: int, height: int, device: torch.device
) -> list[Image.Image]:
    """`enlarge` for images of one size (a video's frames): each GAN pass takes as many of them at once as
    `BATCH_PIXELS` allows, so a clip costs a few passes instead of one per frame."""
    if not images:
        return []
    if len({image.size for image in images}) != 1:
        raise ValueError("enlarge_all takes images of one size")
    scale = upscaler_scale(upscaler)
    passes = 0
    while (images[0].width < width or images[0].height < height) and passes < MAX_PASSES and scale > 1:
        padded = (images[0].width + 2 * BORDER) * (images[0].height + 2 * BORDER)
        batch = max(1, BATCH_PIXELS // padded)
        images = [
            enlarged
            for start in range(0, len(images), batch)
            for enlarged in _gan_pass(upscaler, images[start : start + batch], device)
        ]
        passes += 1
    if images[0].size != (width, height):
        images = [image.resize((width, height), Image.Resampling.LANCZOS) for image in images]
    return images


def _gan_pass(upscaler: Any, images: list[Image.Image], device: torch.device) -> list[Image.Image]:
    """One pass of the GAN over `images` (one size) as one batch, their edges extended by `BORDER` pixels first
    and the extension cut off after: the convolutions' zero padding would otherwise darken the output's borders
    and corners."""
    pixels = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images]) / 255.0
    tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    tensor = torch.nn.functional.pad(tensor, (BORDER,) * 4, mode="replicate")
    with torch.inference_mode():
        output = upscaler(tensor.to(device)).clamp(0, 1)
    cut = BORDER * (output.shape[-1] // tensor.shape[-1])
    output = output[..., cut : output.shape[-2] - cut, cut : output.shape[-1] - cut]
    arrays = (output.permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().astype(np.uint8)
    return [Image.fromarray(array) for array in arrays]


def refines_gan_upscale(request: GenerationRequest) -> bool:
    """Whether an upscale that a GAN enlarged also gets an img2img pass: Upscale (Creative) does; Subtle's
    gentle pass would only soften what the GAN drew, so Subtle is the enlargement alone."""
    return request.strength > UPSCALE_SUBTLE


def with_output_scale(family: ModelFamily, scale: int) -> ModelFamily:
    """`family` as seen from outside an engine whose images are enlarged `scale` times: its sizes (native side
    and size multiple) are those of the enlarged images, which is what requests ask for."""
    if scale == 1:
        return family
    return dataclasses.replace(
        family, native_size=family.native_size * scale, size_multiple=family.size_multiple * scale
    )


def native_request(request: GenerationRequest, scale: int) -> GenerationRequest:
    """`request` at 1/`scale` of its size, with its source and mask images reduced to match (area averaging,
    which is how the GAN's training inputs were made), for a model whose outputs are enlarged `scale` times."""
    width, height = request.width // scale, request.height // scale

    def reduced(png: bytes | None, mode: str) -> bytes | None:
        if png is None:
            return None
        image = decode_image(png).convert(mode)
        return encode_png(image.resize((width, height), Image.Resampling.BOX))

    return request.replace(
        width=width,
        height=height,
        source_image=reduced(request.source_image, "RGB"),
        mask_image=reduced(request.mask_image, "L"),
    )
