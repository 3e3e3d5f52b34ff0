"""Time a 2x2 grid (four images at native size) from the built-in demo model on this machine's CPU.

    python bench/demo.py [--threads 2] [--repeats 3]

Loads the model the way `kaika imagine` does (empty MODEL → the demo folder), warms up once, then prints
the median seconds per grid and its ratio to the 5 s target. One run prints every figure; no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pipeline.engine import Engine
from pipeline.request import GenerationRequest

TARGET_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=GenerationRequest.steps)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    engine = Engine.load("", device="cpu", dtype="float32")
    load_seconds = time.perf_counter() - started
    size = engine.family.native_size
    request = GenerationRequest(
        prompt="a red circle on a blue background",
        seed=1,
        width=size,
        height=size,
        steps=args.steps,
        num_images=4,
    )
    engine.run([request])  # warm-up: first-call allocations and kernel selection
    timings = []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        (result,) = engine.run([request.replace(seed=100 + 4 * repeat)])
        timings.append(time.perf_counter() - started)
    grid = statistics.median(timings)
    print(f"model load: {load_seconds:.2f} s")
    print(
        f"2x2 grid, {len(result.images)} images at {size}x{size}, {args.steps} steps, guidance "
        f"{request.guidance}, {args.threads} threads: median {grid:.2f} s over {args.repeats} "
        f"(runs: {', '.join(f'{t:.2f}' for t in timings)})"
    )
    print(
        f"ratio to the {TARGET_SECONDS:.0f} s target: {grid / TARGET_SECONDS:.2f} "
        f"({'within' if grid <= TARGET_SECONDS else 'over'} target)"
    )


if __name__ == "__main__":
    main()
