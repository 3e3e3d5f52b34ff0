"""How well the demo GAN enlarges: PSNR and edge sharpness of GAN vs Lanczos vs bicubic vs nearest, 64 → 256 px.

`kaika eval-demo --upscaler`. Inputs are held-out scenes (combinations training never shows) drawn at 64 px
as the demo model draws them; the truth is the same scene drawn at 256 px. Beside PSNR, two edge figures,
counted over the pixels within a few pixels of a colour boundary of the truth:
- in-between share: pixels whose colour is none of the scene's flat colours (a blurred edge has many;
  the truth's anti-aliased edges have about one pixel's width);
- misplaced share: pixels nearer to another of the scene's colours than the truth's there (an edge in the
  wrong place: the staircase of a nearest-neighbour enlargement).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.demo.scenes import IMAGE_SIZE, PALETTE, Scene, random_scene, render

SCALE = 4
EDGE_RADIUS = 3  # pixels either side of a boundary that count as "at an edge"
IN_BETWEEN = 0.15  # share of the distance to the next colour beyond which a pixel is neither colour
# What the GAN must do (issue 17): beat Lanczos on PSNR and edge sharpness, edges at most 0.7x Lanczos'
# in-between share, and far fewer misplaced edge pixels than a nearest-neighbour enlargement.
MAX_IN_BETWEEN_VS_LANCZOS = 0.7
MAX_MISPLACED_VS_NEAREST = 0.5
METHODS = ("nearest", "bicubic", "lanczos", "gan")
_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Scores:
    psnr: float
    in_between: float
    misplaced: float


def held_out_scenes(count: int, seed: int = 4242) -> list[Scene]:
    rng = random.Random(seed)
    return [random_scene(rng, held_out=True) for _ in range(count)]


def _classes(pixels: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: index of the nearest scene colour, and whether the pixel is in between two colours."""
    distances = np.linalg.norm(pixels[:, :, None, :] - colors[None, None], axis=-1)
    order = np.argsort(distances, axis=-1)
    nearest, second = order[..., 0], order[..., 1]
    d_nearest = np.take_along_axis(distances, nearest[..., None], -1)[..., 0]
    gap = np.linalg.norm(colors[nearest] - colors[second], axis=-1)
    return nearest, d_nearest > IN_BETWEEN * gap


def _edge_zone(truth_classes: np.ndarray) -> np.ndarray:
    boundary = np.zeros(truth_classes.shape, dtype=bool)
    boundary[:, 1:] |= truth_classes[:, 1:] != truth_classes[:, :-1]
    boundary[1:, :] |= truth_classes[1:, :] != truth_classes[:-1, :]
    zone = boundary.copy()
    for dy in range(-EDGE_RADIUS, EDGE_RADIUS + 1):
        for dx in range(-EDGE_RADIUS, EDGE_RADIUS + 1):
            zone |= np.roll(np.roll(boundary, dy, 0), dx, 1)
    return zone


def score(image: Image.Image, truth: Image.Image, scene: Scene) -> Scores:
    """PSNR against the truth, and the in-between and misplaced shares of the pixels at its edges."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    target = np.asarray(truth, dtype=np.float64)
    mse = float(np.mean((pixels - target) ** 2))
    psnr = 10 * np.log10(255.0**2 / max(mse, 1e-10))
    names = [scene.background, *(shape.color for shape in scene.shapes)]
    colors = np.array([PALETTE[name] for name in dict.fromkeys(names)], dtype=np.float64)
    truth_classes, _ = _classes(target, colors)
    classes, in_between = _classes(pixels, colors)
    zone = _edge_zone(truth_classes)
    return Scores(
        psnr=psnr,
        in_between=float(in_between[zone].mean()),
        misplaced=float((classes[zone] != truth_classes[zone]).mean()),
    )


def transition_share(image: Image.Image, contrast: float = 0.25) -> float:
    """Share of pixels inside a colour transition: whose 3x3 neighbourhood spans more than `contrast` of the
    image's range in some channel. Needs no known colours (it scores the model's own images); a blurred
    edge spreads over more pixels than a crisp one, so lower is sharper."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    padded = np.pad(pixels, ((1, 1), (1, 1), (0, 0)), mode="edge")
    windows = [
        padded[dy : dy + pixels.shape[0], dx : dx + pixels.shape[1]] for dy in range(3) for dx in range(3)
    ]
    spread = (np.max(windows, axis=0) - np.min(windows, axis=0)).max(-1)
    full_range = (pixels.max((0, 1)) - pixels.min((0, 1))).max()
    return float((spread > contrast * max(full_range, 1.0)).mean())


def enlargements(image: Image.Image, upscaler, device) -> dict[str, Image.Image]:
    from pipeline.upscaling import enlarge

    size = (image.width * SCALE, image.height * SCALE)
    results = {name: image.resize(size, method) for name, method in _RESAMPLING.items()}
    results["gan"] = enlarge(upscaler, image, *size, device)
    return results


def sheet(rows: list[tuple[Image.Image, dict[str, Image.Image], Image.Image]], zoom: int = 3) -> Image.Image:
    """Per scene: the 64 px input, nearest, bicubic, Lanczos, GAN and the 256 px truth, each at 256 px;
    under them, the same columns zoomed `zoom`x on one edge."""
    side = IMAGE_SIZE * SCALE
    columns = ("input", *METHODS, "truth")
    label_height = 18
    crop = side // zoom // 2
    width = len(columns) * (side + 4)
    height = label_height + len(rows) * (2 * side + 8)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    titles = {"input": "input (64 px)", "gan": "GAN (Kaika)", "truth": "truth (256 px drawing)"}
    for column, name in enumerate(columns):
        draw.text((column * (side + 4) + 4, 3), titles.get(name, name), fill="black")
    for row, (small, enlarged, truth) in enumerate(rows):
        top = label_height + row * (2 * side + 8)
        tiles = {"input": small.resize((side, side), Image.Resampling.NEAREST), **enlarged, "truth": truth}
        # Zoom on the middle of the first shape's left edge, where every enlargement differs most.
        shape = _first_shape_edge(truth)
        box = (shape[0] - crop // 2, shape[1] - crop // 2, shape[0] + crop // 2, shape[1] + crop // 2)
        for column, name in enumerate(columns):
            left = column * (side + 4)
            canvas.paste(tiles[name], (left, top))
            detail = tiles[name].crop(box)
            canvas.paste(detail.resize((side, side), Image.Resampling.NEAREST), (left, top + side + 4))
    return canvas


def _first_shape_edge(truth: Image.Image) -> tuple[int, int]:
    """A point on a colour boundary near the image's middle row, kept inside the image for a crop."""
    pixels = np.asarray(truth, dtype=np.int32)
    middle = pixels.shape[0] // 2
    for y in (middle, middle - 20, middle + 20, middle - 50, middle + 50):
        changes = np.nonzero(np.abs(np.diff(pixels[y], axis=0)).sum(-1) > 60)[0]
        if len(changes):
            x = int(changes[0])
            margin = 24
            return min(max(x, margin), truth.width - margin), min(max(y, margin), truth.height - margin)
    return truth.width // 2, truth.height // 2


def evaluate(upscaler, device, count: int) -> tuple[dict[str, Scores], list]:
    totals: dict[str, list[Scores]] = {name: [] for name in (*METHODS, "truth")}
    shown = []
    for index, scene in enumerate(held_out_scenes(count)):
        small, truth = render(scene), render(scene, IMAGE_SIZE * SCALE)
        enlarged = enlargements(small, upscaler, device)
        for name, image in enlarged.items():
            totals[name].append(score(image, truth, scene))
        totals["truth"].append(score(truth, truth, scene))
        if index < 4:
            shown.append((small, enlarged, truth))
    means = {
        name: Scores(
            *(float(np.mean([getattr(s, f) for s in scores])) for f in ("psnr", "in_between", "misplaced"))
        )
        for name, scores in totals.items()
    }
    return means, shown


def verdicts(means: dict[str, Scores]) -> dict[str, bool]:
    gan, lanczos, nearest = means["gan"], means["lanczos"], means["nearest"]
    return {
        "PSNR above Lanczos'": gan.psnr > lanczos.psnr,
        f"in-between share at most {MAX_IN_BETWEEN_VS_LANCZOS}x Lanczos'": gan.in_between
        <= MAX_IN_BETWEEN_VS_LANCZOS * lanczos.in_between,
        f"misplaced share at most {MAX_MISPLACED_VS_NEAREST}x nearest's (no staircase)": gan.misplaced
        <= MAX_MISPLACED_VS_NEAREST * nearest.misplaced,
    }


def run(args: argparse.Namespace) -> int:
    import torch

    from pipeline.demo.upscaler import load_esrgan_file

    torch.set_num_threads(args.threads)
    weights = Path(args.upscaler_weights)
    if not weights.is_file():
        print(
            f"kaika eval-demo: no upscaler weights at {weights}; train them with kaika train-demo --upscaler"
        )
        return 2
    upscaler = load_esrgan_file(weights)
    means, shown = evaluate(upscaler, torch.device("cpu"), args.images)
    print(
        f"{args.images} held-out scenes, 64 px → 256 px; edges = pixels within {EDGE_RADIUS} px of a boundary"
    )
    print(f"{'method':<10} {'PSNR dB':>8} {'in-between':>11} {'misplaced':>10}")
    for name in (*METHODS, "truth"):
        s = means[name]
        psnr = "—" if name == "truth" else f"{s.psnr:.2f}"
        print(f"{name:<10} {psnr:>8} {s.in_between:>10.1%} {s.misplaced:>10.1%}")
    ratio = means["gan"].in_between / max(means["lanczos"].in_between, 1e-9)
    print(f"GAN in-between share / Lanczos': {ratio:.2f}")
    checks = verdicts(means)
    for name, passed in checks.items():
        print(f"{'met' if passed else 'NOT MET'}: {name}")
    args.out.mkdir(parents=True, exist_ok=True)
    sheet(shown).save(args.out / "upscaler-sheet.png")
    summary = {
        "images": args.images,
        "scores": {name: asdict(s) for name, s in means.items()},
        "checks": checks,
    }
    (args.out / "upscaler-eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out / 'upscaler-sheet.png'} and {args.out / 'upscaler-eval.json'}")
    return 0 if all(checks.values()) else 1
