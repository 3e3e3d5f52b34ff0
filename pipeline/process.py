"""The diffusion process of one image made visible (🔬 Process, `kaika explain`).

One sheet, two strips. The top strip is the forward process: the finished image, encoded by the model's VAE,
with Gaussian noise added as the job's own noise schedule adds it at increasing timesteps — for DDPM-style
schedules x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε, for flow-matching ones x_t = (1 − σ) · x_0 + σ · ε. The bottom strip
is the reverse process: the job's own latents after chosen denoising steps, from nearly pure noise to the
result, each decoded by the VAE. Every frame is labelled with its step and timestep.

Only what the sheet needs is kept while the image is made again (same seed, same request), so ordinary jobs
pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

# Frames per strip: the first and last steps and evenly spaced ones between.
FRAMES = 6
# Each frame is shown at least this many pixels wide (small models are enlarged so the noise can be seen).
FRAME_MIN_SIDE = 160
LABEL_HEIGHT = 16
TITLE_HEIGHT = 20
FORWARD_TITLE = "Forward process: Gaussian noise added to the result, step by step"
REVERSE_TITLE = "Reverse process: the model removing noise, from its start to the result"


def supports_process(pipe: Any) -> bool:
    """Whether a text-to-image pipeline can show its process: a VAE to encode and decode with, an image
    processor, and a noise schedule Kaika knows how to apply (DDPM-style ᾱ or flow matching)."""
    vae_config = getattr(getattr(pipe, "vae", None), "config", None)
    return (
        getattr(vae_config, "scaling_factor", None) is not None
        and hasattr(pipe, "image_processor")
        and (_alphas_cumprod(pipe.scheduler) is not None or _is_flow_matching(pipe.scheduler))
    )


def chosen_steps(total: int, frames: int = FRAMES) -> list[int]:
    """`frames` step indices from 0 to total − 1, evenly spaced (all of them when there are fewer)."""
    if total <= frames:
        return list(range(total))
    return sorted({round(i * (total - 1) / (frames - 1)) for i in range(frames)})


def forward_noised(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, timestep: float) -> torch.Tensor:
    """x_t of the forward process q(x_t | x_0) at `timestep` of `scheduler`'s training schedule."""
    alpha_bar = _alpha_bar(scheduler, timestep)
    if alpha_bar is not None:
        return alpha_bar.sqrt().to(x0.dtype) * x0 + (1 - alpha_bar).sqrt().to(x0.dtype) * noise
    sigma = _sigma(scheduler, timestep)
    return (1 - sigma) * x0 + sigma * noise


def noise_level(scheduler: Any, timestep: float) -> float:
    """The share of noise in x_t at `timestep` (0: the image, 1: pure noise): √(1 − ᾱ_t), or σ."""
    alpha_bar = _alpha_bar(scheduler, timestep)
    return float((1 - alpha_bar).sqrt()) if alpha_bar is not None else _sigma(scheduler, timestep)


def encode(pipe: Any, image: Image.Image) -> torch.Tensor:
    """The VAE latents of `image` (the mean of its encoding), scaled as the denoiser sees them."""
    vae = pipe.vae
    pixels = pipe.image_processor.preprocess(image).to(device=vae.device, dtype=vae.dtype)
    encoded = vae.encode(pixels)
    # A KL autoencoder gives a distribution (its mean is the image's latents); a DC-AE (Sana) the latents.
    latents = encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latent
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (latents - shift) * vae.config.scaling_factor


def decode(pipe: Any, latents: torch.Tensor) -> Image.Image:
    """One image from latents scaled as the denoiser sees them (unpacked: batch, channels, h, w)."""
    vae = pipe.vae
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    scaled = latents.to(device=vae.device, dtype=vae.dtype) / vae.config.scaling_factor + shift
    pixels = vae.decode(scaled, return_dict=False)[0]
    return pipe.image_processor.postprocess(pixels, output_type="pil")[0]


def frame_box(strip: int, column: int, frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where frame `column` of strip `strip` (0 forward, 1 reverse) lies on a sheet of `frame`-sized frames."""
    width, height = frame
    top = strip * (TITLE_HEIGHT + height + LABEL_HEIGHT) + TITLE_HEIGHT
    return (column * width, top, (column + 1) * width, top + height)


def frame_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """A frame's size on the sheet: the image enlarged by a whole factor to at least FRAME_MIN_SIDE wide."""
    scale = max(1, -(-FRAME_MIN_SIDE // image_size[0]))
    return image_size[0] * scale, image_size[1] * scale


def sheet(
    forward: Sequence[tuple[str, Image.Image]], reverse: Sequence[tuple[str, Image.Image]]
) -> Image.Image:
    """The two strips under their titles, each frame with its label under it."""
    frame = frame_size((forward or reverse)[0][1].size)
    columns = max(len(forward), len(reverse))
    canvas = Image.new("RGB", (columns * frame[0], frame_box(2, 0, frame)[1] - TITLE_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for strip, (title, frames) in enumerate(((FORWARD_TITLE, forward), (REVERSE_TITLE, reverse))):
        draw.text((4, frame_box(strip, 0, frame)[1] - TITLE_HEIGHT + 4), title, fill="black", font=font)
        for column, (label, image) in enumerate(frames):
            left, top, _, bottom = frame_box(strip, column, frame)
            canvas.paste(image.convert("RGB").resize(frame, Image.Resampling.NEAREST), (left, top))
            draw.text((left + 4, bottom + 2), label, fill="black", font=font)
    return canvas


def show(
    pipe: Any,
    family: Any,
    request: Any,
    result: Image.Image,
    kept: Sequence[tuple[float, torch.Tensor]],
    seed: int,
) -> Image.Image:
    """The sheet of `result`, made by `pipe` from `request` with `kept` = (timestep, latents) after each step.

    The reverse strip shows chosen steps; the forward strip the result, then the result noised (noise drawn
    from the image's seed) at those same timesteps in rising order, so each noise level appears in both.
    """
    from pipeline.families import unpack_latents

    reverse = []
    for index in chosen_steps(len(kept)):
        timestep, latents = kept[index]
        unpacked = unpack_latents(latents, family, request.height, request.width)
        reverse.append((f"step {index + 1}/{len(kept)} t={timestep:.0f}", decode(pipe, unpacked)))
    x0 = encode(pipe, result)
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(x0.device, x0.dtype)
    forward = [("t=0 the result", result)]
    for timestep in sorted(kept[index][0] for index in chosen_steps(len(kept))):
        noised = decode(pipe, forward_noised(pipe.scheduler, x0, noise, timestep))
        forward.append((f"t={timestep:.0f} noise {noise_level(pipe.scheduler, timestep):.2f}", noised))
    return sheet(forward, reverse)


def _alphas_cumprod(scheduler: Any) -> torch.Tensor | None:
    values = getattr(scheduler, "alphas_cumprod", None)
    return values if isinstance(values, torch.Tensor) else None


def _alpha_bar(scheduler: Any, timestep: float) -> torch.Tensor | None:
    """ᾱ_t of a DDPM-style schedule (None for flow matching)."""
    alphas_cumprod = _alphas_cumprod(scheduler)
    if alphas_cumprod is None:
        return None
    return alphas_cumprod[min(max(round(float(timestep)), 0), len(alphas_cumprod) - 1)]


def _sigma(scheduler: Any, timestep: float) -> float:
    """σ of a flow-matching schedule, whose timesteps are σ · T."""
    return float(timestep) / scheduler.config.num_train_timesteps


def _is_flow_matching(scheduler: Any) -> bool:
    return type(scheduler).__name__.startswith("FlowMatch")
