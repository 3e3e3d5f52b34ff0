"""Train the demo model from nothing: the autoencoder first, then the UNet and text encoder on cached latents.

`python -m pipeline.demo.train` (or `kaika train-demo`). Deterministic for a seed: every batch is drawn
from `seed + step`, so a run stopped and resumed from its checkpoint takes the same path. Each stage also
has a wall-clock cap so a run always ends and saves; the learning rate follows whichever of the step
count or the clock is further along, so a capped stage still finishes its schedule.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.demo import architecture as arch
from pipeline.demo.options import (
    TrainConfig,
    add_train_arguments,
    config_from_args,
    upscaler_config_from_args,
)
from pipeline.demo.scenes import caption, random_scene, render_array, vocabulary
from pipeline.demo.tokenizer import build_tokenizer, save_tokenizer


def _schedule(progress: float, warmup: float = 0.03, floor: float = 0.05) -> float:
    """Linear warm-up then cosine decay to `floor`, as a factor of the base learning rate."""
    if progress < warmup:
        return max(progress / warmup, 0.01)
    done = min((progress - warmup) / (1 - warmup), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


class _Stage:
    """Step loop shared by both stages: resume, step/clock budget, periodic checkpoints, progress bar."""

    def __init__(self, name: str, cfg: TrainConfig, steps: int, minutes: float, state: dict[str, Callable]):
        self.name, self.cfg, self.steps, self.budget = name, cfg, steps, minutes * 60
        self.path = cfg.work_dir / f"{name}-checkpoint.pt"
        self.get_state, self.set_state = state["get"], state["set"]
        self.step, self.elapsed = 0, 0.0
        if self.path.exists() and not cfg.restart:
            saved = torch.load(self.path, weights_only=False)
            self.set_state(saved["state"])
            self.step, self.elapsed = saved["step"], saved["elapsed"]
            print(f"[{name}] resumed at step {self.step} ({self.elapsed / 60:.1f} min done)", flush=True)

    @property
    def progress(self) -> float:
        return max(self.step / self.steps, self.elapsed / self.budget)

    def save(self) -> None:
        self.cfg.work_dir.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        torch.save({"state": self.get_state(), "step": self.step, "elapsed": self.elapsed}, partial)
        partial.replace(self.path)

    def run(self, train_step: Callable[[int, float], float]) -> None:
        """Step until the step count or the clock budget is used up (a finished stage resumes as done)."""
        bar = tqdm(
            total=self.steps,
            initial=self.step,
            desc=self.name,
            disable=not self.cfg.progress,
            mininterval=5,
            dynamic_ncols=True,
        )
        last_save = started = time.monotonic()
        base_elapsed = self.elapsed
        while self.progress < 1.0:
            loss = train_step(self.step, _schedule(self.progress))
            self.step += 1
            now = time.monotonic()
            self.elapsed = base_elapsed + now - started
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", minutes=f"{self.elapsed / 60:.1f}", refresh=False)
            if now - last_save >= self.cfg.checkpoint_seconds:
                self.save()
                last_save = now
        bar.close()
        self.save()
        print(f"[{self.name}] finished: {self.step} steps in {self.elapsed / 60:.1f} min", flush=True)


def _edge_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: keeps shape outlines sharp, which plain L1 underweights."""
    dx = (output[..., :, 1:] - output[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (output[..., 1:, :] - output[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def train_vae(cfg: TrainConfig):
    torch.manual_seed(cfg.seed)
    vae = arch.build_vae()
    with torch.no_grad():
        # Start with a near-deterministic posterior (std ~0.02): a unit-variance one drowns the latent in
        # sampling noise and a short run never gets sharp. The tiny KL weight leaves it there.
        log_variance = slice(arch.LATENT_CHANNELS, None)
        vae.quant_conv.weight[log_variance] *= 0.1
        vae.quant_conv.bias[log_variance] = -8.0
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    stage = _Stage(
        "vae",
        cfg,
        cfg.vae_steps,
        cfg.vae_minutes,
        {
            "get": lambda: {"vae": vae.state_dict(), "optimizer": optimizer.state_dict()},
            "set": lambda s: (vae.load_state_dict(s["vae"]), optimizer.load_state_dict(s["optimizer"])),
        },
    )

    def step(index: int, lr_factor: float) -> float:
        rng = random.Random(cfg.seed * 1_000_003 + index)
        images = torch.from_numpy(render_array([random_scene(rng) for _ in range(cfg.vae_batch)]))
        torch.manual_seed(cfg.seed * 1_000_003 + index)
        for group in optimizer.param_groups:
            group["lr"] = cfg.vae_lr * lr_factor
        with torch.autocast("cpu", dtype=torch.bfloat16):
            posterior = vae.encode(images).latent_dist
            decoded = vae.decode(posterior.sample()).sample
        decoded = decoded.float()
        # Objects cover a few percent of the pixels; weighting them up makes their colours come right
        # long before the plain average would (the corner pixel is always background).
        on_object = (images - images[:, :, :1, :1]).abs().amax(1, keepdim=True) > 0.1
        weight = 1.0 + 7.0 * on_object.float()
        loss = (
            (weight * (decoded - images).abs()).mean()
            + _edge_l1(decoded, images)
            + 1e-6 * posterior.kl().mean()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    vae.train()
    stage.run(step)
    vae.eval()
    return vae, stage


def cache_latents(cfg: TrainConfig, vae) -> tuple[torch.Tensor, list, float]:
    """Encode a fixed pool of training scenes once; the UNet stage never runs the encoder."""
    rng = random.Random(cfg.seed + 7)
    scenes = [random_scene(rng) for _ in range(cfg.latent_pool)]
    path = cfg.work_dir / "latents.pt"
    if path.exists() and not cfg.restart:
        saved = torch.load(path)
        if saved["count"] == len(scenes):
            return saved["latents"], scenes, saved["scaling_factor"]
    chunks = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for start in tqdm(
            range(0, len(scenes), 256), desc="latents", disable=not cfg.progress, mininterval=5
        ):
            images = torch.from_numpy(render_array(scenes[start : start + 256]))
            chunks.append(vae.encode(images).latent_dist.mean.float())
    latents = torch.cat(chunks)
    scaling_factor = float(1.0 / latents.std())
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"latents": latents, "count": len(scenes), "scaling_factor": scaling_factor}, path)
    return latents, scenes, scaling_factor


def train_unet(cfg: TrainConfig, latents: torch.Tensor, scenes: list, scaling_factor: float):
    from diffusers.training_utils import EMAModel

    torch.manual_seed(cfg.seed + 1)
    tokenizer = build_tokenizer(vocabulary())
    text_encoder = arch.build_text_encoder(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    unet = arch.build_unet()
    noise_scheduler = arch.build_training_scheduler()
    parameters = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.unet_lr, weight_decay=0.01)
    ema = EMAModel(parameters, decay=0.9995, use_ema_warmup=True, power=2 / 3)

    def set_state(state):
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])

    stage = _Stage(
        "unet",
        cfg,
        cfg.unet_steps,
        cfg.unet_minutes,
        {
            "get": lambda: {
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict(),
            },
            "set": set_state,
        },
    )
    alphas = noise_scheduler.alphas_cumprod

    def step(index: int, lr_factor: float) -> float:
        rng = random.Random(cfg.seed * 2_000_003 + index)
        generator = torch.Generator().manual_seed(cfg.seed * 2_000_003 + index)
        picks = [rng.randrange(len(scenes)) for _ in range(cfg.unet_batch)]
        texts = ["" if rng.random() < cfg.caption_dropout else caption(scenes[i], rng) for i in picks]
        ids = tokenizer(
            texts,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        clean = latents[picks] * scaling_factor
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, len(alphas), (len(picks),), generator=generator)
        noisy = noise_scheduler.add_noise(clean, noise, timesteps)
        target = noise_scheduler.get_velocity(clean, noise, timesteps)
        for group in optimizer.param_groups:
            group["lr"] = cfg.unet_lr * lr_factor
        prediction = unet(noisy, timesteps, text_encoder(ids)[0]).sample
        loss = F.mse_loss(prediction, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        ema.step(parameters)
        return loss.item()

    unet.train()
    text_encoder.train()
    stage.run(step)
    ema.copy_to(parameters)
    unet.eval()
    text_encoder.eval()
    return unet, text_encoder, tokenizer, stage


def export(cfg: TrainConfig, vae, unet, text_encoder, tokenizer, scaling_factor: float, stats: dict) -> Path:
    """Write a standard StableDiffusionPipeline folder; it loads with `DiffusionPipeline.from_pretrained`."""
    from diffusers import StableDiffusionPipeline

    vae.register_to_config(scaling_factor=scaling_factor)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=arch.build_sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(cfg.out, safe_serialization=True)
    save_tokenizer(tokenizer, cfg.out / "tokenizer")
    (cfg.out / "training.json").write_text(json.dumps(stats, indent=2, default=str) + "\n")
    return cfg.out


def train(cfg: TrainConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    started = time.monotonic()
    vae, vae_stage = train_vae(cfg)
    latents, scenes, scaling_factor = cache_latents(cfg, vae)
    unet, text_encoder, tokenizer, unet_stage = train_unet(cfg, latents, scenes, scaling_factor)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    stats = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items()
            if k not in ("out", "work_dir", "restart", "progress")
        },
        "vae": {
            "steps": vae_stage.step,
            "minutes": round(vae_stage.elapsed / 60, 1),
            "parameters": count(vae),
        },
        "unet": {
            "steps": unet_stage.step,
            "minutes": round(unet_stage.elapsed / 60, 1),
            "parameters": count(unet),
        },
        "text_encoder": {"parameters": count(text_encoder), "vocabulary": len(tokenizer)},
        "latent_scaling_factor": scaling_factor,
        "this_session_minutes": round((time.monotonic() - started) / 60, 1),
    }
    path = export(cfg, vae, unet, text_encoder, tokenizer, scaling_factor, stats)
    print(f"saved the demo model to {path}", flush=True)
    return path


def run(args: argparse.Namespace) -> int:
    """`kaika train-demo`: the diffusion model, with --upscaler the GAN upscaler, with --video the motion model."""
    if args.video:
        from pipeline.demo.options import motion_config_from_args
        from pipeline.demo.train_motion import train_motion

        train_motion(motion_config_from_args(args))
    elif args.upscaler:
        from pipeline.demo.train_upscaler import train_upscaler

        train_upscaler(upscaler_config_from_args(args))
    else:
        train(config_from_args(args))
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m pipeline.demo.train") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
