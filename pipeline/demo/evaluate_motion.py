"""The demo motion model on clips it never saw in training, scored from pixels.

`kaika eval-demo --video`: held-out clips (colour/shape/background/motion combinations training never
shows), asked for with a caption (a third with synonyms), each made from a text prompt as Kaika's
`--video` makes it: the demo image model draws the first frame from `first_frame_prompt`, the demo GAN
enlarges it to the 256 px members get, the motion model animates that (8 frames, motion 0.5). Every frame is
read by `pipeline.demo.checker`, at that size. `--source motion` animates the scene's own drawing instead
(the motion model alone) and `--source renders` scores the scenes' own frames (which checks the checks),
both enlarged by the GAN in the same way.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.demo.checker import object_mask, read
from pipeline.demo.moving import (
    DIRECTIONS,
    MOTIONS,
    MovingScene,
    evaluation_moving,
    moving_caption,
    render_frames,
)
from pipeline.demo.scenes import BACKGROUND_WORDS, IMAGE_SIZE, render

TARGETS = {"direction": 0.80, "kept": 0.90, "background": 0.95}
FRAMES = 8
AMOUNT = 0.5
# The shape's centre must move the asked way by a tenth of the frame.
MIN_TRAVEL = IMAGE_SIZE / 10


@dataclass(frozen=True)
class Case:
    prompt: str
    moving: MovingScene
    synonyms: bool


@dataclass(frozen=True)
class ClipVerdict:
    background: bool  # every frame shows the asked background (the first frame's, when none is asked)
    kept: bool  # every frame shows one shape of the first frame's colour and shape
    motion: bool  # the shape moves as asked (direction, bounce, growth, shrinking or turn)
    direction: bool | None = None  # left/right/up/down/falling: the centre goes the asked way
    first_as_asked: bool | None = None  # the first frame has the asked colour and shape


def held_out_cases(count: int = 60, seed: int = 2025) -> list[Case]:
    """`count` held-out clips, motions in turn; every third caption with synonyms."""
    rng = random.Random(seed)
    cases: list[Case] = []
    while len(cases) < count:
        motion = MOTIONS[len(cases) % len(MOTIONS)]
        synonyms = len(cases) % 3 == 2
        moving = evaluation_moving(rng, motion, AMOUNT)
        prompt = moving_caption(moving, rng, synonym_rate=1.0 if synonyms else 0.0, alone_rate=0.0)
        if all(prompt != case.prompt for case in cases):
            cases.append(Case(prompt, moving, synonyms))
    return cases


def names_background(prompt: str) -> bool:
    """Whether the prompt asks for a background (every caption that does says "background" or "backdrop")."""
    return any(word in prompt.replace(",", " ").split() for word in BACKGROUND_WORDS)


def _turned_apart(first: np.ndarray, later: np.ndarray) -> float:
    """Overlap (IoU) of two masks once their bounding-box centres are aligned: low when the shape turned."""

    def centred(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        shift_y = round(mask.shape[0] / 2 - (ys.min() + ys.max() + 1) / 2)
        shift_x = round(mask.shape[1] / 2 - (xs.min() + xs.max() + 1) / 2)
        return np.roll(mask, (shift_y, shift_x), axis=(0, 1))

    a, b = centred(first), centred(later)
    return float((a & b).sum() / max((a | b).sum(), 1))


def judge_clip(moving: MovingScene, frames: list[Image.Image], names_background: bool = True) -> ClipVerdict:
    """Does the clip show the asked background, keep its shape and colour, and move as asked?"""
    readings = [read(frame, turned=True) for frame in frames]
    # The asked background when the prompt names one, else the first frame's.
    wanted = moving.scene.background if names_background else readings[0].background
    background = all(reading.background == wanted for reading in readings)
    if not all(reading.regions for reading in readings):
        return ClipVerdict(
            background, kept=False, motion=False, direction=False if moving.motion in DIRECTIONS else None
        )
    shapes = [reading.regions[0] for reading in readings]
    first = shapes[0]
    kept = all(shape.color == first.color and shape.shape == first.shape for shape in shapes)
    # Distances in pixels of a 64-pixel frame, areas as shares of the 64-pixel frame's.
    scale = frames[0].width / IMAGE_SIZE
    xs, ys = (np.array([getattr(s, name) for s in shapes], dtype=float) / scale for name in ("x", "y"))
    areas = np.array([s.area for s in shapes], dtype=float)
    direction = None
    if moving.motion in DIRECTIONS:
        axis, sign = DIRECTIONS[moving.motion]
        along = (xs, ys)[axis][-1] - (xs, ys)[axis][0]
        across = (ys, xs)[axis][-1] - (ys, xs)[axis][0]
        direction = bool(sign * along >= MIN_TRAVEL and abs(along) > abs(across))
        motion = direction
    elif moving.motion == "bouncing":
        motion = bool(ys[0] - ys.min() >= 4 and abs(ys[-1] - ys[0]) <= 3)
    elif moving.motion == "growing":
        motion = bool(areas[-1] / areas[0] >= 1.3)
    elif moving.motion == "shrinking":
        motion = bool(areas[-1] / areas[0] <= 1 / 1.3)
    else:  # spinning: stays in place (a turned triangle's box moves a little) at its size, and turns
        masks = [object_mask(frame) for frame in frames]
        still = max(np.hypot(xs - xs[0], ys - ys[0])) <= 6 and 0.8 <= areas.max() / areas.min() <= 1.25
        motion = bool(still and min(_turned_apart(masks[0], mask) for mask in masks[1:]) < 0.85)
    asked = moving.shape
    return ClipVerdict(
        background,
        kept,
        motion,
        direction,
        first_as_asked=first.color == asked.color and first.shape == asked.kind,
    )


def summarize(verdicts: list[tuple[Case, ClipVerdict]]) -> dict[str, dict[str, float | int]]:
    summary: dict[str, dict[str, float | int]] = {}
    names = ("direction", "kept", "background", "motion", "first_as_asked")
    for group, keep in (("all", lambda c: True), ("synonyms", lambda c: c.synonyms)):
        for name in names:
            results = [getattr(v, name) for c, v in verdicts if keep(c) and getattr(v, name) is not None]
            if results:
                summary[f"{group}/{name}"] = {"rate": sum(results) / len(results), "count": len(results)}
    for motion in MOTIONS:
        results = [v.motion for c, v in verdicts if c.moving.motion == motion]
        if results:
            summary[f"motion/{motion}"] = {"rate": sum(results) / len(results), "count": len(results)}
    return summary


def contact_sheet(rows: list[tuple[Case, list[Image.Image], ClipVerdict]], scale: int = 2) -> Image.Image:
    """One row per clip: its frames (green frame: everything checked passed; red: something failed)."""
    tile = IMAGE_SIZE * scale
    text_width = 430
    sheet = Image.new("RGB", (text_width + FRAMES * (tile + 4), len(rows) * (tile + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (case, frames, verdict) in enumerate(rows):
        top = row * (tile + 4)
        passed = verdict.background and verdict.kept and verdict.motion
        draw.text((4, top + tile // 2 - 6), case.prompt[:70], fill="black" if passed else "#d22")
        for column, frame in enumerate(frames):
            left = text_width + column * (tile + 4)
            draw.rectangle((left, top, left + tile + 3, top + tile + 3), fill="#2a2" if passed else "#d22")
            resample = Image.Resampling.NEAREST if frame.width <= tile else Image.Resampling.BOX
            sheet.paste(frame.resize((tile, tile), resample), (left + 2, top + 2))
    return sheet


def _enlarger():
    """What members get from a 64 px picture: the demo GAN's 4x enlargement (unchanged without the GAN)."""
    import torch

    from pipeline.demo.upscaler import load_demo_upscaler
    from pipeline.upscaling import enlarge_all, upscaler_scale

    gan = load_demo_upscaler()
    if gan is None:
        return lambda images: images
    side = IMAGE_SIZE * upscaler_scale(gan)
    return lambda images: enlarge_all(gan, images, side, side, torch.device("cpu"))


def _animator(image_model: Path, video_model: Path, steps: int, guidance: float, source: str):
    import torch
    from diffusers import DiffusionPipeline

    from pipeline.demo.motion import DemoVideoPipeline

    enlarge = _enlarger()
    pipe = DiffusionPipeline.from_pretrained(image_model, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    video = DemoVideoPipeline.from_pretrained(video_model, pipe)

    def animate(case: Case, seeds: list[int]) -> list[list[Image.Image]]:
        if source == "motion":
            firsts = [render(case.moving.scene)] * len(seeds)
        else:
            generators = [torch.Generator().manual_seed(seed) for seed in seeds]
            still = video.first_frame_prompt(case.prompt)
            firsts = pipe(
                [still] * len(seeds), num_inference_steps=steps, guidance_scale=guidance, generator=generators
            ).images
        return [
            video(first, case.prompt, num_frames=FRAMES, motion=AMOUNT).frames[0] for first in enlarge(firsts)
        ]

    return animate


def evaluate(
    image_model: Path,
    video_model: Path,
    out: Path,
    prompts: int = 60,
    seeds: int = 4,
    steps: int = 25,
    guidance: float = 7.0,
    source: str = "model",
    threads: int = 2,
) -> dict:
    import torch

    torch.set_num_threads(threads)
    cases = held_out_cases(prompts)
    seed_list = list(range(seeds))
    if source == "renders":
        enlarge = _enlarger()
        animate = lambda case, seeds: [enlarge(render_frames(case.moving, FRAMES))] * len(seeds)  # noqa: E731
    else:
        animate = _animator(image_model, video_model, steps, guidance, source)
    rows, verdicts = [], []
    for case in cases:
        clips = animate(case, seed_list)
        judged = [judge_clip(case.moving, frames, names_background(case.prompt)) for frames in clips]
        rows.append((case, clips[0], judged[0]))
        verdicts.extend((case, verdict) for verdict in judged)
    summary = summarize(verdicts)
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows).save(out / f"demo-video-eval-{source}.png")
    report = {
        "source": source,
        "prompts": len(cases),
        "seeds": seeds,
        "frames": FRAMES,
        "motion": AMOUNT,
        "steps": steps,
        "guidance": guidance,
        "summary": summary,
        "cases": [
            {"prompt": c.prompt, "motion": c.moving.motion, "synonyms": c.synonyms, "verdict": asdict(v)}
            for c, v in verdicts
        ],
    }
    (out / f"demo-video-eval-{source}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def format_summary(report: dict) -> str:
    lines = [
        f"{report['prompts']} held-out clips x {report['seeds']} seeds, source={report['source']}, "
        f"{report['frames']} frames, motion {report['motion']}",
        f"{'metric':<26}{'rate':>7}{'target':>8}{'n':>6}",
    ]
    for key, value in report["summary"].items():
        target = TARGETS.get(key.split("/")[1]) if key.startswith("all/") else None
        mark = "" if target is None else ("  ok" if value["rate"] >= target else "  below")
        target_text = "" if target is None else f"{target:.0%}"
        lines.append(f"{key:<26}{value['rate']:>7.0%}{target_text:>8}{value['count']:>6}{mark}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.prompts < 1 or args.seeds < 1:
        raise SystemExit("--prompts and --seeds must be at least 1")
    source = args.source
    if source == "reconstructions":
        raise SystemExit("--source reconstructions scores images; with --video use model, motion or renders")
    if source != "renders":
        if not (args.model / "model_index.json").is_file():
            raise SystemExit(
                f"no diffusers model in {args.model} (model_index.json missing); run `kaika train-demo`"
            )
        if not (args.video_model / "config.json").is_file():
            raise SystemExit(
                f"no demo motion model in {args.video_model} (config.json missing); run `kaika train-demo --video`"
            )
    report = evaluate(
        args.model,
        args.video_model,
        args.out,
        args.prompts,
        args.seeds,
        args.steps,
        args.guidance,
        source,
        args.threads,
    )
    print(format_summary(report))
    print(f"contact sheet: {args.out / ('demo-video-eval-' + source + '.png')}")
    return 0
