"""Prompt adherence of the demo model on prompts it never saw in training, scored from pixels.

`kaika eval-demo`: held-out scenes (combinations training never shows), captioned plainly or with
synonyms, each generated with several seeds, judged by `pipeline.demo.checker`, with a contact sheet.
`--source renders` scores the scenes' own drawings and `--source reconstructions` their autoencoder
round trips, which checks the checker and shows what the autoencoder alone allows.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from pipeline.demo.checker import Verdict, judge
from pipeline.demo.options import add_eval_arguments
from pipeline.demo.scenes import Scene, caption, random_scene, render

TARGETS = {"background": 0.90, "color": 0.90, "shape": 0.80, "position": 0.80, "both_colors": 0.60}
METRICS = tuple(TARGETS)


@dataclass(frozen=True)
class Case:
    prompt: str
    scene: Scene
    synonyms: bool


def held_out_cases(count: int = 60, seed: int = 2024) -> list[Case]:
    """`count` prompts from held-out scenes: a third with synonyms; a third of scenes have two objects."""
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        synonyms = len(cases) % 3 == 2
        scene = random_scene(rng, pair_fraction=0.34, held_out=True)
        prompt = caption(scene, rng, synonym_rate=1.0 if synonyms else 0.0)
        if synonyms and prompt == caption(scene, random.Random(0), synonym_rate=0.0):
            continue
        if all(prompt != case.prompt for case in cases):
            cases.append(Case(prompt, scene, synonyms))
    return cases


def summarize(verdicts: list[tuple[Case, Verdict]]) -> dict[str, dict[str, float | int]]:
    """Share of passes per metric, over all prompts and over the synonym prompts alone."""
    summary: dict[str, dict[str, float | int]] = {}
    for group, keep in (("all", lambda c: True), ("synonyms", lambda c: c.synonyms)):
        for metric in METRICS:
            results = [getattr(v, metric) for c, v in verdicts if keep(c) and getattr(v, metric) is not None]
            if results:
                summary[f"{group}/{metric}"] = {"rate": sum(results) / len(results), "count": len(results)}
    return summary


def contact_sheet(rows: list[tuple[Case, list[Image.Image], list[Verdict]]], scale: int = 2) -> Image.Image:
    """One row per prompt: its images (green frame: everything checked passed; red: something failed)."""
    tile = rows[0][1][0].width * scale
    text_width = 430
    sheet = Image.new("RGB", (text_width + len(rows[0][1]) * (tile + 4), len(rows) * (tile + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (case, images, verdicts) in enumerate(rows):
        top = row * (tile + 4)
        draw.text((4, top + tile // 2 - 6), case.prompt[:70], fill="black")
        for column, (image, verdict) in enumerate(zip(images, verdicts, strict=True)):
            left = text_width + column * (tile + 4)
            passed = all(getattr(verdict, m) in (True, None) for m in METRICS)
            draw.rectangle((left, top, left + tile + 3, top + tile + 3), fill="#2a2" if passed else "#d22")
            sheet.paste(image.resize((tile, tile), Image.Resampling.NEAREST), (left + 2, top + 2))
    return sheet


def _generator(model: Path, steps: int, guidance: float, threads: int):
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(threads)
    pipe = DiffusionPipeline.from_pretrained(model, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)

    def generate(prompt: str, seeds: list[int]) -> list[Image.Image]:
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        return pipe(
            [prompt] * len(seeds), num_inference_steps=steps, guidance_scale=guidance, generator=generators
        ).images

    return generate


def _reconstructor(model: Path, threads: int):
    import numpy as np
    import torch
    from diffusers import AutoencoderKL

    torch.set_num_threads(threads)
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae").eval()

    def reconstruct(scene: Scene) -> Image.Image:
        pixels = torch.from_numpy(np.asarray(render(scene), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[
            None
        ]
        with torch.inference_mode():
            out = vae.decode(vae.encode(pixels).latent_dist.mode()).sample[0]
        return Image.fromarray(((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())

    return reconstruct


def evaluate(
    model: Path,
    out: Path,
    prompts: int = 60,
    seeds: int = 4,
    steps: int = 25,
    guidance: float = 7.0,
    source: str = "model",
    threads: int = 2,
) -> dict:
    cases = held_out_cases(prompts)
    seed_list = list(range(seeds))
    if source == "model":
        generate = _generator(model, steps, guidance, threads)
    elif source == "reconstructions":
        reconstruct = _reconstructor(model, threads)
        generate = lambda prompt, seeds: [reconstruct(case.scene)] * len(seeds)  # noqa: E731
    else:
        generate = lambda prompt, seeds: [render(case.scene)] * len(seeds)  # noqa: E731
    rows, verdicts = [], []
    for case in cases:
        images = generate(case.prompt, seed_list)
        row = [judge(case.scene, image) for image in images]
        rows.append((case, images, row))
        verdicts.extend((case, verdict) for verdict in row)
    summary = summarize(verdicts)
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows).save(out / f"demo-eval-{source}.png")
    report = {
        "source": source,
        "prompts": len(cases),
        "seeds": seeds,
        "steps": steps,
        "guidance": guidance,
        "summary": summary,
        "cases": [
            {"prompt": c.prompt, "synonyms": c.synonyms, "verdicts": [v.__dict__ for v in row]}
            for c, _, row in rows
        ],
    }
    (out / f"demo-eval-{source}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def format_summary(report: dict) -> str:
    lines = [
        f"{report['prompts']} held-out prompts x {report['seeds']} seeds, source={report['source']}, "
        f"steps={report['steps']}, guidance={report['guidance']}",
        f"{'metric':<24}{'rate':>7}{'target':>8}{'n':>6}",
    ]
    for key, value in report["summary"].items():
        metric = key.split("/")[1]
        target = (
            TARGETS["color"]
            if key.startswith("synonyms") and metric in ("color", "background")
            else TARGETS[metric]
        )
        if key.startswith("synonyms") and metric not in ("color", "background", "both_colors"):
            target = None
        mark = "" if target is None else ("  ok" if value["rate"] >= target else "  below")
        target_text = "" if target is None else f"{target:.0%}"
        lines.append(f"{key:<24}{value['rate']:>7.0%}{target_text:>8}{value['count']:>6}{mark}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.video:
        from pipeline.demo.evaluate_motion import run as run_motion

        return run_motion(args)
    if args.upscaler:
        from pipeline.demo.evaluate_upscaler import run as run_upscaler

        return run_upscaler(args)
    if args.prompts < 1 or args.seeds < 1:
        raise SystemExit("--prompts and --seeds must be at least 1")
    if args.source == "motion":
        raise SystemExit("--source motion scores the motion model; add --video")
    if args.source != "renders" and not (args.model / "model_index.json").is_file():
        raise SystemExit(
            f"no diffusers model in {args.model} (model_index.json missing); run `kaika train-demo`"
        )
    report = evaluate(
        args.model, args.out, args.prompts, args.seeds, args.steps, args.guidance, args.source, args.threads
    )
    print(format_summary(report))
    print(f"contact sheet: {args.out / ('demo-eval-' + args.source + '.png')}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m pipeline.demo.evaluate") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_eval_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
