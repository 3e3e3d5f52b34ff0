"""Train the demo GAN upscaler: 4x ESRGAN generator + patch discriminator on the procedural scenes.

`kaika train-demo --upscaler`. Targets are scenes drawn at 256 px (anti-aliased); inputs are the same
scenes box-reduced to 64 px, as the demo model draws them, then blurred and noised by a random amount so
the generator also sharpens the autoencoder's softer output. The loss is squared error alone for the first
part of the run (a faithful start), then plus a small adversarial term from the discriminator.
Deterministic for a seed and resumable from its checkpoint, like `pipeline.demo.train`.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.demo.options import UpscalerTrainConfig
from pipeline.demo.scenes import IMAGE_SIZE, Scene, random_scene, render
from pipeline.demo.train import _Stage
from pipeline.demo.upscaler import CompactConfig, PatchDiscriminator, SRVGGNetCompact, save_generator

SCALE = 4
HIGH_SIZE = IMAGE_SIZE * SCALE


def _crop_box(scene: Scene, rng: random.Random, crop: int) -> tuple[int, int]:
    """Top-left of a `crop`-pixel window of the 256 px drawing around one of the scene's shapes (edges are
    what the generator must learn; plain background teaches little), on the 4-pixel grid of the input."""
    shape = rng.choice(scene.shapes)
    centre_x = shape.x * SCALE + rng.uniform(-shape.radius, shape.radius) * SCALE
    centre_y = shape.y * SCALE + rng.uniform(-shape.radius, shape.radius) * SCALE
    left = int(min(max(centre_x - crop / 2, 0), HIGH_SIZE - crop)) // SCALE * SCALE
    top = int(min(max(centre_y - crop / 2, 0), HIGH_SIZE - crop)) // SCALE * SCALE
    return left, top


def _gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Each image blurred with its own sigma (pixels); sigma 0 leaves it unchanged."""
    radius = 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigmas.clamp(min=1e-3)[:, None] ** 2))
    kernels = kernels / kernels.sum(1, keepdim=True)
    batch, channels, height, width = images.shape
    flat = images.reshape(1, batch * channels, height, width)
    per_channel = kernels.repeat_interleave(channels, 0)
    padded = F.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = F.conv2d(padded, per_channel[:, None, None, :], groups=batch * channels)
    padded = F.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = F.conv2d(padded, per_channel[:, None, :, None], groups=batch * channels)
    return flat.reshape(batch, channels, height, width)


def training_pair(
    scenes: list[Scene],
    rng: random.Random,
    generator: torch.Generator,
    crop: int,
    max_blur: float,
    max_noise: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): 256 px drawings cropped to `crop` px near a shape, and their degraded 64 px versions."""
    targets = []
    for scene in scenes:
        left, top = _crop_box(scene, rng, crop)
        drawing = np.asarray(render(scene, HIGH_SIZE), dtype=np.float32)[top : top + crop, left : left + crop]
        targets.append(drawing / 255.0)
    high = torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous()
    # A small colour shift per image, the same on input and target: the model's colours are never exactly
    # the palette's, and the generator should keep what it is given rather than snap to eight colours.
    shift = (torch.rand(len(scenes), 3, 1, 1, generator=generator) - 0.5) * 0.08
    high = (high + shift).clamp(0, 1)
    low = F.avg_pool2d(high, SCALE)
    low = _gaussian_blur(low, torch.rand(len(scenes), generator=generator) * max_blur)
    noise = torch.rand(len(scenes), 1, 1, 1, generator=generator) * max_noise
    low = low + noise * torch.randn(low.shape, generator=generator)
    low = (low.clamp(0, 1) * 255).round() / 255  # 8-bit, as a PNG is
    return low, high


def initialize(generator: SRVGGNetCompact) -> None:
    """He initialisation for the PReLU chain (torch's default shrinks the signal layer by layer until the
    first layers get no gradient), and a last layer near zero: training starts from the nearest-neighbour
    enlargement the output is added to."""
    convs = [layer for layer in generator.body if isinstance(layer, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv in convs:
            torch.nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
            conv.bias.zero_()
        convs[-1].weight.mul_(0.1)


def train_upscaler(cfg: UpscalerTrainConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    generator_net = SRVGGNetCompact(CompactConfig(num_feat=cfg.features, num_conv=cfg.convs))
    initialize(generator_net)
    discriminator = PatchDiscriminator()
    average = copy.deepcopy(generator_net).requires_grad_(False)
    g_optimizer = torch.optim.Adam(generator_net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=(0.9, 0.99))

    def set_state(state: dict) -> None:
        generator_net.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        average.load_state_dict(state["average"])
        g_optimizer.load_state_dict(state["g_optimizer"])
        d_optimizer.load_state_dict(state["d_optimizer"])

    stage = _Stage(
        "upscaler",
        cfg,
        cfg.steps,
        cfg.minutes,
        {
            "get": lambda: {
                "generator": generator_net.state_dict(),
                "discriminator": discriminator.state_dict(),
                "average": average.state_dict(),
                "g_optimizer": g_optimizer.state_dict(),
                "d_optimizer": d_optimizer.state_dict(),
            },
            "set": set_state,
        },
    )

    def step(index: int, lr_factor: float) -> float:
        rng = random.Random(cfg.seed * 3_000_017 + index)
        noise_generator = torch.Generator().manual_seed(cfg.seed * 3_000_017 + index)
        scenes = [random_scene(rng) for _ in range(cfg.batch)]
        low, high = training_pair(scenes, rng, noise_generator, cfg.crop, cfg.max_blur, cfg.max_noise)
        for optimizer in (g_optimizer, d_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor
        adversarial = stage.progress >= cfg.gan_start and cfg.adversarial_weight > 0
        output = generator_net(low)
        # Squared error: plain L1 is already near its minimum at the nearest-neighbour start (most pixels are
        # flat colour, right as they are) and the few edge pixels never move it off; squared error does.
        loss = F.mse_loss(output, high)
        if adversarial:
            discriminator.requires_grad_(False)
            fooled = discriminator(output)
            loss = loss + cfg.adversarial_weight * F.binary_cross_entropy_with_logits(
                fooled, torch.ones_like(fooled)
            )
        g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        g_optimizer.step()
        with torch.no_grad():
            for kept, live in zip(average.parameters(), generator_net.parameters(), strict=True):
                kept.lerp_(live, 1 - cfg.ema_decay if index > 100 else 1.0)
        if adversarial:
            discriminator.requires_grad_(True)
            real, fake = discriminator(high), discriminator(output.detach().clamp(0, 1))
            d_loss = F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
        return loss.item()

    generator_net.train()
    stage.run(step)
    stats = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items()
            if k not in ("out", "work_dir", "restart", "progress")
        },
        "steps": stage.step,
        "minutes": round(stage.elapsed / 60, 1),
        "generator_parameters": sum(p.numel() for p in average.parameters()),
        "discriminator_parameters": sum(p.numel() for p in discriminator.parameters()),
        "this_session_minutes": round((time.monotonic() - started) / 60, 1),
    }
    save_generator(average, cfg.out)
    (cfg.out / "training.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"saved the demo upscaler to {cfg.out}", flush=True)
    return cfg.out
