"""Options of `kaika train-demo` and `kaika eval-demo`, importable without loading torch."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = Path(__file__).parent / "model"
DEFAULT_UPSCALER = Path(__file__).parent / "upscaler"
DEFAULT_VIDEO_MODEL = Path(__file__).parent / "video_model"


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


@dataclass
class UpscalerTrainConfig:
    """`kaika train-demo --upscaler`: the 4x GAN upscaler's run (its own checkpoints in `work_dir`)."""

    out: Path = DEFAULT_UPSCALER
    work_dir: Path = Path(".demo-train")
    seed: int = 1234
    threads: int = 1
    features: int = 48
    convs: int = 8
    steps: int = 6000
    minutes: float = 28.0
    batch: int = 12
    crop: int = 96  # pixels of the 256 px target per training window
    lr: float = 5e-4
    ema_decay: float = 0.998
    gan_start: float = 0.6  # share of the run trained with squared error alone before the discriminator joins
    adversarial_weight: float = 1e-3
    max_blur: float = 0.8  # largest Gaussian sigma (input pixels) applied to an input
    max_noise: float = 0.01  # largest noise sigma (of 1.0) added to an input
    checkpoint_seconds: float = 120.0
    restart: bool = False
    progress: bool = True


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults, gan = TrainConfig(), UpscalerTrainConfig()
    parser.add_argument(
        "--upscaler",
        action="store_true",
        help="train the 4x GAN upscaler (pipeline/demo/upscaler) instead of the diffusion model",
    )
    parser.add_argument(
        "--video",
        action="store_true",
        help="train the motion model (pipeline/demo/video_model) on the frozen demo model instead",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"folder to write (default {defaults.out} or {gan.out})"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=defaults.work_dir, help="checkpoints and latent cache"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch CPU threads (default {defaults.threads}; {gan.threads} with --upscaler, "
        f"{MotionTrainConfig.threads} with --video)",
    )
    for name in ("vae_steps", "vae_batch", "latent_pool", "unet_steps", "unet_batch"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("vae_lr", "vae_minutes", "unet_lr", "unet_minutes", "caption_dropout", "checkpoint_seconds"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    for name in ("steps", "minutes", "batch", "crop"):
        parser.add_argument(
            "--upscaler-" + name,
            type=type(getattr(gan, name)),
            default=getattr(gan, name),
            help="with --upscaler",
        )
    motion = MotionTrainConfig()
    for name in ("steps", "minutes", "batch", "pool"):
        parser.add_argument(
            "--video-" + name,
            type=type(getattr(motion, name)),
            default=getattr(motion, name),
            help="with --video",
        )
    parser.add_argument(
        "--restart", action="store_true", help="ignore checkpoints in --work-dir and start over"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {name: getattr(args, name) for name in TrainConfig.__dataclass_fields__}
    defaults = TrainConfig()
    values["out"] = args.out or defaults.out
    values["threads"] = args.threads or defaults.threads
    return TrainConfig(**values)


def upscaler_config_from_args(args: argparse.Namespace) -> UpscalerTrainConfig:
    defaults = UpscalerTrainConfig()
    shared = ("work_dir", "seed", "checkpoint_seconds", "restart", "progress")
    return UpscalerTrainConfig(
        **{name: getattr(args, name) for name in shared},
        **{name: getattr(args, "upscaler_" + name) for name in ("steps", "minutes", "batch", "crop")},
        out=args.out or defaults.out,
        threads=args.threads or defaults.threads,
    )


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
        choices=("model", "reconstructions", "renders", "motion"),
        default="model",
        help="score generated images, autoencoder round trips, or the scenes' own drawings "
        "(with --video: clips from prompts, the motion model on the scenes' drawings, or the scenes' own frames)",
    )
    parser.add_argument(
        "--video", action="store_true", help="score the motion model on held-out moving scenes instead"
    )
    parser.add_argument(
        "--video-model", type=Path, default=DEFAULT_VIDEO_MODEL, help="with --video: the motion model folder"
    )
    parser.add_argument(
        "--upscaler",
        action="store_true",
        help="score the 4x GAN upscaler against Lanczos, bicubic and nearest on held-out drawings instead",
    )
    parser.add_argument(
        "--upscaler-weights",
        type=Path,
        default=DEFAULT_UPSCALER / "model.safetensors",
        help="with --upscaler: the ESRGAN-format weights to score",
    )
    parser.add_argument("--images", type=int, default=48, help="with --upscaler: held-out scenes to score")


@dataclass
class MotionTrainConfig:
    """`kaika train-demo --video`: the motion model's run on the frozen demo image model (`image_model`)."""

    out: Path = DEFAULT_VIDEO_MODEL
    image_model: Path = DEFAULT_MODEL
    work_dir: Path = Path(".demo-train")
    seed: int = 1234
    threads: int = 2
    steps: int = 20000
    minutes: float = 60.0
    batch: int = 64
    moments: int = 4  # moments of each clip whose transforms a step compares
    pool: int = 12000  # first frames encoded once and drawn from
    log_every: int = 100
    lr: float = 2e-3
    checkpoint_seconds: float = 120.0
    restart: bool = False
    progress: bool = True


def motion_config_from_args(args: argparse.Namespace) -> MotionTrainConfig:
    defaults = MotionTrainConfig()
    shared = ("work_dir", "seed", "checkpoint_seconds", "restart", "progress")
    return MotionTrainConfig(
        **{name: getattr(args, name) for name in shared},
        **{name: getattr(args, "video_" + name) for name in ("steps", "minutes", "batch", "pool")},
        out=args.out or defaults.out,
        threads=args.threads or defaults.threads,
    )
