"""How fast Kaika generates, and what its speed-ups cost the demo model's prompt adherence, in one run.

    python bench/speed.py            # 60 held-out prompts x 4 seeds per mode, as `kaika eval-demo` scores
    python bench/speed.py --quick    # 12 prompts x 4 seeds, fewer timing rounds: about a minute

1. Demo model (MODEL empty), a 2x2 grid of one prompt, rounds alternating the modes so that load from other
   processes hits them alike: median seconds per image and the median of the per-round ratios to Kaika's
   default, for raw diffusers at the pipeline's own defaults, Kaika's default, each --draft speed-up alone
   (fewer steps; the solver with those steps; the guidance cut-off at the default steps) and --draft.
2. Demo model, held-out adherence (`pipeline.demo.evaluate`: the prompts and checker of `kaika eval-demo`)
   for raw diffusers, Kaika's default, the fewer steps with DPM-Solver++ and --draft (`--every`: each
   speed-up alone too).
3. The tiny test families (random weights, `testkit.families`): seconds per image for raw diffusers at
   the pipeline's defaults, Kaika's default and --draft, time alone.

Ends with the goal: --draft at least 2x faster than the default, background and colour adherence at least 90%
and within 3 points of the default's, shape within 3 points. Model loading is never timed.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.demo.checker import judge  # noqa: E402
from pipeline.demo.evaluate import held_out_cases, summarize  # noqa: E402
from pipeline.engine import Engine  # noqa: E402
from pipeline.families import DRAFT_SOLVER  # noqa: E402
from pipeline.prompt import PromptDefaults, parse_prompt  # noqa: E402
from pipeline.speed import SpeedUps  # noqa: E402

TIMED_PROMPT = "a red circle on the left on a blue background"
# The tiny families make images this wide and high (rounded up to their size multiple), not their native size.
FAMILY_SIDE = 64
# The adherence figures the goal compares, as `kaika eval-demo` names them.
METRICS = ("background", "color", "shape")


@dataclass(frozen=True)
class Mode:
    """One way to make a grid: `run(engine, prompt, seeds)` → images."""

    name: str
    run: Callable[[Engine, str, list[int]], list]


def raw_diffusers(engine: Engine, prompt: str, seeds: list[int], **size: int) -> list:
    """The text-to-image pipeline called as its documentation shows, at its own default steps and guidance."""
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    with torch.inference_mode():
        return engine.txt2img([prompt] * len(seeds), generator=generators, **size).images


def kaika(
    flags: str = "", speedups: SpeedUps | None = None, **changes
) -> Callable[[Engine, str, list[int]], list]:
    """The engine running `prompt --seed S flags` as /imagine parses it; with `speedups`, a --draft job using
    those alone."""

    def run(engine: Engine, prompt: str, seeds: list[int]) -> list:
        text = f"{prompt} --seed {seeds[0]} {flags}".strip()
        request = parse_prompt(text, family=engine.family, defaults=PromptDefaults(num_images=len(seeds)))
        request = request.replace(**changes)
        if speedups is not None:
            engine.draft_speedups = speedups
        try:
            (result,) = engine.run([request])
        finally:
            engine.draft_speedups = SpeedUps.draft(engine.family)
        return result.images

    return run


def demo_modes(engine: Engine) -> tuple[list[Mode], list[Mode]]:
    """(every mode timed, the modes whose adherence is always scored: raw, default, the solver and --draft)."""
    family = engine.family
    draft = SpeedUps.draft(family)
    raw = Mode(f"raw diffusers ({_pipeline_defaults(engine)})", raw_diffusers)
    default = Mode(f"Kaika default ({family.default_steps} steps)", kaika())
    fewer = Mode(f"  fewer steps alone ({family.draft_steps})", kaika("--draft", SpeedUps()))
    in_draft = "in --draft" if draft.scheduler else "not in this model's --draft"
    solver = Mode(
        f"  fewer steps + DPM-Solver++ ({in_draft})",
        kaika("--draft", SpeedUps(scheduler=DRAFT_SOLVER)),
    )
    cutoff = Mode(
        f"  guidance cut-off alone ({draft.guidance_share} of {family.default_steps} steps)",
        kaika("--draft", SpeedUps(guidance_share=draft.guidance_share), steps=family.default_steps),
    )
    sampler = (draft.scheduler or type(engine.txt2img.scheduler).__name__).removesuffix("Scheduler")
    drafted = Mode(
        f"Kaika --draft ({sampler} {family.draft_steps} steps, guidance cut-off)", kaika("--draft")
    )
    return [raw, default, fewer, solver, cutoff, drafted], [raw, default, solver, drafted]


def _pipeline_defaults(engine: Engine) -> str:
    import inspect

    parameters = inspect.signature(type(engine.txt2img).__call__).parameters
    return (
        f"{type(engine.txt2img.scheduler).__name__.removesuffix('Scheduler')} "
        f"{parameters['num_inference_steps'].default} steps, guidance {parameters['guidance_scale'].default}"
    )


def timed(modes: list[Mode], engine: Engine, rounds: int, images: int) -> dict[str, tuple[float, float]]:
    """Median seconds per image of each mode and the median per-round ratio to the second mode (the default)."""
    seeds = list(range(100, 100 + images))
    for mode in modes:
        mode.run(engine, TIMED_PROMPT, seeds)  # warm-up: first-call allocations, schedulers built
    times: dict[str, list[float]] = {mode.name: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            started = time.perf_counter()
            mode.run(engine, TIMED_PROMPT, seeds)
            times[mode.name].append((time.perf_counter() - started) / images)
    baseline = times[modes[1].name]
    return {
        name: (
            statistics.median(values),
            statistics.median(b / v for v, b in zip(values, baseline, strict=True)),
        )
        for name, values in times.items()
    }


def adherence(mode: Mode, engine: Engine, prompts: int, seeds: int) -> dict[str, float]:
    verdicts = []
    for case in held_out_cases(prompts):
        images = mode.run(engine, case.prompt, list(range(seeds)))
        verdicts += [(case, judge(case.scene, image)) for image in images]
    summary = summarize(verdicts)
    return {metric: summary[f"all/{metric}"]["rate"] for metric in METRICS if f"all/{metric}" in summary}


def family_times(rounds: int) -> list[tuple[str, float, float, float, int, int]]:
    """Per tiny family: seconds per image raw / default / --draft, and the default and draft steps."""
    from testkit.families import FAMILIES, save_tiny_family

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in FAMILIES:
            engine = Engine.load(
                str(save_tiny_family(name, Path(folder) / name)), device="cpu", dtype="float32"
            )
            side = -(-FAMILY_SIDE // engine.family.size_multiple) * engine.family.size_multiple
            size = {"width": side, "height": side}
            modes = [
                Mode("raw", functools.partial(raw_diffusers, **size)),
                Mode("default", kaika(**size)),
                Mode("draft", kaika("--draft", **size)),
            ]
            figures = timed(modes, engine, rounds, images=2)
            rows.append(
                (
                    name,
                    *(figures[m.name][0] for m in modes),
                    engine.family.default_steps,
                    engine.family.draft_steps,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 prompts, 3 timing rounds")
    parser.add_argument("--prompts", type=int, help="held-out prompts per mode (default 60; --quick 12)")
    parser.add_argument("--seeds", type=int, default=4, help="images per prompt (default 4)")
    parser.add_argument("--rounds", type=int, help="timing rounds (default 7; --quick 3)")
    parser.add_argument("--every", action="store_true", help="score each speed-up alone too")
    parser.add_argument("--no-families", dest="families", action="store_false", help="skip the tiny families")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    prompts = args.prompts or (12 if args.quick else 60)
    rounds = args.rounds or (3 if args.quick else 7)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    engine = Engine.load("", device="cpu", dtype="float32")
    modes, scored = demo_modes(engine)
    figures = timed(modes, engine, rounds, images=4)
    print(f"Demo model, a 2x2 grid of '{TIMED_PROMPT}', {rounds} alternating rounds, {args.threads} threads")
    print(f"{'mode':<62}{'s/image':>9}{'speed-up':>10}")
    for mode in modes:
        seconds, ratio = figures[mode.name]
        print(f"{mode.name:<62}{seconds:>9.3f}{ratio:>9.2f}x")

    if args.every:
        scored = modes
    print(f"\nDemo model, held-out adherence: {prompts} prompts x {args.seeds} seeds (kaika eval-demo's)")
    print(f"{'mode':<62}" + "".join(f"{metric:>12}" for metric in METRICS))
    rates = {}
    for mode in scored:
        rates[mode.name] = adherence(mode, engine, prompts, args.seeds)
        print(f"{mode.name:<62}" + "".join(f"{rates[mode.name][m]:>12.1%}" for m in METRICS), flush=True)

    if args.families:
        print(
            f"\nTiny test families (random weights), seconds per image, 2 images of {FAMILY_SIDE}x{FAMILY_SIDE} a call"
        )
        print(f"{'family':<12}{'raw':>9}{'default':>9}{'draft':>9}{'steps':>8}{'draft/default':>15}")
        for name, raw, default, draft, steps, draft_steps in family_times(rounds):
            print(
                f"{name:<12}{raw:>9.3f}{default:>9.3f}{draft:>9.3f}{f'{steps}→{draft_steps}':>8}"
                f"{default / draft:>14.2f}x"
            )

    default, draft = rates[scored[1].name], rates[scored[-1].name]
    speed = figures[modes[-1].name][1]
    checks = [
        (f"--draft {speed:.2f}x faster than the default", speed >= 2),
        *(
            (
                f"{metric} {draft[metric]:.1%} (default {default[metric]:.1%})",
                draft[metric] >= 0.9 and default[metric] - draft[metric] <= 0.03,
            )
            for metric in ("background", "color")
        ),
        (
            f"shape {draft['shape']:.1%} (default {default['shape']:.1%})",
            default["shape"] - draft["shape"] <= 0.03,
        ),
        (
            f"default {figures[modes[1].name][0]:.3f} s/image vs raw diffusers {figures[modes[0].name][0]:.3f}",
            figures[modes[1].name][0] <= figures[modes[0].name][0],
        ),
    ]
    print(
        "\nGoal: --draft >= 2x the default's speed; background and colour >= 90% and within 3 points; shape"
    )
    print("within 3 points; the default no slower than raw diffusers")
    for text, met in checks:
        print(f"  {'met ' if met else 'MISSED'}  {text}")
    print(f"\nbench/speed.py ran {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
