"""Train the demo motion model on moving scenes, on top of the frozen demo image model.

`kaika train-demo --video`. Each batch draws fresh clips (`pipeline.demo.moving`) from `seed + step`, so a
run stopped and resumed from its checkpoint takes the same path; the step loop, checkpoints, clock budget and
learning-rate schedule are the image model's (`pipeline.demo.train`). The demo autoencoder and text encoder
are frozen: only the motion model learns.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.demo.motion import MotionModel, encode_images, encode_prompts
from pipeline.demo.moving import MovingScene, move_at, moving_caption, random_start, training_clip
from pipeline.demo.options import MotionTrainConfig
from pipeline.demo.scenes import IMAGE_SIZE, render_array
from pipeline.demo.train import _Stage

_RING_POINTS = 8  # points on the shape's outline whose predicted paths are compared with the true ones


def load_frozen(model: Path):
    """The demo image model's autoencoder, text encoder and tokenizer, frozen."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(model, subfolder="vae").eval().requires_grad_(False)
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    return vae, text_encoder, tokenizer


def cache_first_frames(cfg: MotionTrainConfig, vae) -> tuple[torch.Tensor, list]:
    """Encode a fixed pool of first frames once (the autoencoder is most of a step's time otherwise)."""
    from tqdm import tqdm

    rng = random.Random(cfg.seed + 11)
    scenes = [random_start(rng) for _ in range(cfg.pool)]
    path = cfg.work_dir / "motion-latents.pt"
    if path.exists() and not cfg.restart:
        saved = torch.load(path)
        if saved["count"] == len(scenes):
            return saved["latents"], scenes
    chunks = []
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(scenes), 256), desc="latents", disable=not cfg.progress, mininterval=5
        ):
            chunks.append(encode_images(vae, torch.from_numpy(render_array(scenes[start : start + 256]))))
    latents = torch.cat(chunks)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"latents": latents, "count": len(scenes)}, path)
    return latents, scenes


def true_moves(clips: list[MovingScene], moments: torch.Tensor) -> torch.Tensor:
    """(batch, moments, 4) transforms of each clip at each moment, as the model predicts them."""
    rows = []
    for clip, row in zip(clips, moments.tolist(), strict=True):
        moves = [move_at(clip.motion, clip.amount, moment) for moment in row]
        rows.append([[m.dx, m.dy, float(np.log(m.scale)), m.angle] for m in moves])
    return torch.tensor(rows, dtype=torch.float32)


def forward_points(points: torch.Tensor, centre: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
    """Where points of the first frame (batch, n, 2; pixels of 64) go at each moment: (batch, moments, n, 2).
    `centre` (batch, 2) in pixels; turn clockwise (y down) and scale about it, then shift."""
    offset = points[:, None] - centre[:, None, None]
    cos, sin = moves[..., 3].cos()[..., None], moves[..., 3].sin()[..., None]
    scale = moves[..., 2].exp()[..., None]
    turned_x = cos * offset[..., 0] - sin * offset[..., 1]
    turned_y = sin * offset[..., 0] + cos * offset[..., 1]
    return torch.stack(
        [
            centre[:, None, None, 0] + moves[..., 0, None] + scale * turned_x,
            centre[:, None, None, 1] + moves[..., 1, None] + scale * turned_y,
        ],
        dim=-1,
    )


def motion_loss(
    clips: list[MovingScene], predicted_centre: torch.Tensor, predicted: torch.Tensor, moments: torch.Tensor
) -> torch.Tensor:
    """Pixel distance between where the predicted and the true motion take the shape's centre and outline
    (a ring of points at its radius), plus the centre's own error, in pixels of the 64-pixel frame."""
    true_centre = torch.tensor([[clip.shape.x, clip.shape.y] for clip in clips], dtype=torch.float32)
    radius = torch.tensor([clip.shape.radius for clip in clips], dtype=torch.float32)
    angles = torch.arange(_RING_POINTS, dtype=torch.float32) * (2 * np.pi / _RING_POINTS)
    ring = torch.stack([angles.cos(), angles.sin()], -1)[None] * radius[:, None, None]
    points = torch.cat([true_centre[:, None], true_centre[:, None] + ring], dim=1)
    centre_pixels = (predicted_centre + 1) / 2 * IMAGE_SIZE
    wanted = forward_points(points, true_centre, true_moves(clips, moments))
    got = forward_points(points, centre_pixels, predicted)
    distance = (got - wanted).norm(dim=-1)
    return F.huber_loss(distance, torch.zeros_like(distance), delta=1.0) + 0.5 * F.huber_loss(
        centre_pixels, true_centre, delta=1.0
    )


def train_motion(cfg: MotionTrainConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    started = time.monotonic()
    vae, text_encoder, tokenizer = load_frozen(cfg.image_model)
    pool, scenes = cache_first_frames(cfg, vae)
    torch.manual_seed(cfg.seed)
    model = MotionModel()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    stage = _Stage(
        "motion",
        cfg,
        cfg.steps,
        cfg.minutes,
        {
            "get": lambda: {"model": model.state_dict(), "optimizer": optimizer.state_dict()},
            "set": lambda s: (model.load_state_dict(s["model"]), optimizer.load_state_dict(s["optimizer"])),
        },
    )
    losses: list[float] = []

    def step(index: int, lr_factor: float) -> float:
        rng = random.Random(cfg.seed * 3_000_017 + index)
        generator = torch.Generator().manual_seed(cfg.seed * 3_000_017 + index)
        picks = [rng.randrange(len(scenes)) for _ in range(cfg.batch)]
        clips = [training_clip(rng, scenes[i]) for i in picks]
        texts = [moving_caption(clip, rng) for clip in clips]
        latents = pool[picks]
        with torch.no_grad():
            hidden, mask = encode_prompts(tokenizer, text_encoder, texts)
        moments = torch.rand(cfg.batch, cfg.moments, generator=generator)
        amount = torch.tensor([clip.amount for clip in clips], dtype=torch.float32)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor
        centre, moves = model(latents, hidden, mask, amount, moments)
        loss = motion_loss(clips, centre, moves, moments)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if cfg.log_every and (index + 1) % cfg.log_every == 0:
            print(f"[motion] step {index + 1}: loss {np.mean(losses[-cfg.log_every :]):.3f}", flush=True)
        return losses[-1]

    model.train()
    stage.run(step)
    model.eval()
    stats = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items()
            if k not in ("out", "work_dir", "restart", "progress", "image_model")
        },
        "motion": {
            "steps": stage.step,
            "minutes": round(stage.elapsed / 60, 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
        },
        "this_session_minutes": round((time.monotonic() - started) / 60, 1),
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(cfg.out, safe_serialization=True)
    (cfg.out / "training.json").write_text(json.dumps(stats, indent=2, default=str) + "\n")
    print(f"saved the demo motion model to {cfg.out}", flush=True)
    return cfg.out
