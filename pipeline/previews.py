"""Progress previews: a step's latents mapped straight to RGB by a linear map, with no VAE decode.

The map is fitted to the loaded model's own VAE when the model loads: a few synthetic colour-block
images are encoded, and least squares finds the latent → RGB map (with a bias) that best gives back
their colours at latent resolution. That works for every latent layout (4, 16 or 32 channels) and
makes the first previews show the colours the final image will have.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from PIL import Image

from pipeline.families import ModelFamily

log = logging.getLogger(__name__)

FIT_IMAGES = 8  # synthetic images encoded to fit the map
FIT_LATENT_SIDE = 8  # their side in latent pixels
FIT_BLOCKS = 4  # colour blocks per side in each image

# Approximate latent → RGB map of the Stable Diffusion 1.x/2.x VAE (rows: latent channels), the fallback
# when fitting is not possible.
SD_LATENT_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)


def latent_rgb_map(pipe: Any, family: ModelFamily) -> torch.Tensor:
    """A (channels + 1, 3) map from the pipeline's latents (as its denoising loop holds them) to RGB in [-1, 1].

    The last row is the bias. Fitted to the pipeline's VAE; a fixed map when that cannot be done.
    """
    try:
        return _fit(pipe, family)
    except Exception as error:  # an unusual VAE must not keep the model from loading
        log.info("Could not fit a preview map to the VAE of this model (%s); using a fixed one", error)
        return _fixed(family.latent_channels)


def _fit(pipe: Any, family: ModelFamily) -> torch.Tensor:
    vae = pipe.vae
    side = FIT_LATENT_SIDE * family.vae_scale
    generator = torch.Generator("cpu").manual_seed(0)
    colours = torch.rand(FIT_IMAGES, 3, FIT_BLOCKS, FIT_BLOCKS, generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(colours, size=(side, side), mode="nearest")
    parameter = next(vae.parameters())
    with torch.inference_mode():
        encoded = vae.encode(images.to(parameter.device, parameter.dtype))
        latents = encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latent
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        latents = (latents.float() - shift) * float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
    targets = torch.nn.functional.avg_pool2d(images, family.vae_scale)  # RGB at latent resolution
    inputs = latents.cpu().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    inputs = torch.cat([inputs, torch.ones(inputs.shape[0], 1)], dim=1)
    outputs = targets.permute(0, 2, 3, 1).reshape(-1, 3)
    solution = torch.linalg.lstsq(inputs, outputs).solution
    if not torch.isfinite(solution).all():
        raise ValueError("the fitted map is not finite")
    return solution


def _fixed(channels: int) -> torch.Tensor:
    factors = torch.zeros(channels + 1, 3)
    if channels == 4:
        factors[:4] = torch.tensor(SD_LATENT_RGB_FACTORS)
    else:  # unknown latent space: the first three channels as grey-ish RGB
        for index in range(min(3, channels)):
            factors[index, index] = 0.5
    return factors


def preview_images(latents: torch.Tensor, rgb_map: torch.Tensor) -> list[Image.Image]:
    """One small RGB image per latent in the batch; `latents` is (batch, channels, h, w)."""
    rgb_map = rgb_map.to(latents.device, torch.float32)
    rgb = torch.einsum("nchw,cr->nrhw", latents.float(), rgb_map[:-1]) + rgb_map[-1].view(1, 3, 1, 1)
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(array) for array in pixels]
