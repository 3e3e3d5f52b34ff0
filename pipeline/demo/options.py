"""Options of `kaika train-demo` and `kaika eval-demo`, importable without loading torch."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = Path(__file__).parent / "model"


@dataclass
class TrainConfig:
    out: Path = DEFAULT_MODEL
    work_dir: Path = Path(".demo-train")
    seed: int = 1234
    threads: int = 2
    vae_steps: int = 4800
    vae_batch: int = 16
    vae_lr: float = 1e-3
    vae_minutes: float = 20.0
    latent_pool: int = 16000
    unet_steps: int = 8400
    unet_batch: int = 32
    unet_lr: float = 5e-4
    unet_minutes: float = 60.0
    caption_dropout: float = 0.1
    checkpoint_seconds: float = 120.0
    restart: bool = False
    progress: bool = True


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--out", type=Path, default=defaults.out, help="model folder to write")
    parser.add_argument(
        "--work-dir", type=Path, default=defaults.work_dir, help="checkpoints and latent cache"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads")
    for name in ("vae_steps", "vae_batch", "latent_pool", "unet_steps", "unet_batch"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("vae_lr", "vae_minutes", "unet_lr", "unet_minutes", "caption_dropout", "checkpoint_seconds"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument(
        "--restart", action="store_true", help="ignore checkpoints in --work-dir and start over"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{name: getattr(args, name) for name in TrainConfig.__dataclass_fields__})


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="demo model folder")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the contact sheet and JSON")
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--source",
        choices=("model", "reconstructions", "renders"),
        default="model",
        help="score generated images, autoencoder round trips, or the scenes' own drawings",
    )
