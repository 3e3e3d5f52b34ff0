"""Text to video on the demo models, as `kaika imagine "… --video"` makes it: time and motion per video.

    python bench/video.py [--seeds 3] [--direction right]

Runs "a red circle moving <direction> on a blue background --video" through the job service (the same path
as the command line and the bot: the image, then its video as a child job) on the CPU, for each seed, in one
process after one model load. For each video it prints the seconds of its image and of its video, its frames,
and how far the red shape's centre moved along the asked direction, as a share of the frame; then the
means, and the share of a video's time the image takes. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from pipeline.video_files import decode_mp4
from service.admission import Place, Requester
from service.settings import Settings
from service.wiring import Services

AXES = {"right": (1, 1), "left": (1, -1), "down": (0, 1), "up": (0, -1)}


def red_centre(frame) -> tuple[float, float]:
    """The red shape's centre as shares of the frame's height and width."""
    pixels = np.asarray(frame, dtype=np.int16)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    if not red.any():
        return float("nan"), float("nan")
    ys, xs = np.nonzero(red)
    return float(ys.mean()) / frame.height, float(xs.mean()) / frame.width


class Timed:
    """A reporter noting when the video's first step came (the image is done then)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.image_done: float | None = None
        self.steps = 0
        self.outcome = None
        self.failure: str | None = None

    async def waiting(self, position: int) -> None:
        pass

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        if step < self.steps and self.image_done is None:  # the count starts again: the video's steps
            self.image_done = time.perf_counter()
        self.steps = step

    async def finished(self, outcome) -> None:
        self.outcome = outcome

    async def failed(self, message: str) -> None:
        self.failure = message


async def run(seeds: int, direction: str) -> None:
    axis, sign = AXES[direction]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(_env_file=None, model="", device="cpu", dtype="float32", data_dir=Path(folder))
        loaded = time.perf_counter()
        services = await Services.open(settings)
        print(f"models loaded in {time.perf_counter() - loaded:.1f} s\n")
        print("| seed | image s | video s | frames | moved (share of the frame) |")
        print("| --- | --- | --- | --- | --- |")
        totals = []
        try:
            for seed in range(seeds):
                prompt = f"a red circle moving {direction} on a blue background --video --seed {seed}"
                request = services.jobs.parse(prompt)
                reporter = Timed()
                task = (
                    await services.jobs.imagine(Requester(0, "bench", True), Place(None, None), request)
                ).start(reporter)
                await task
                ended = time.perf_counter()
                if reporter.outcome is None:
                    print(f"| {seed} | failed: {reporter.failure} | | | |")
                    continue
                frames = decode_mp4(reporter.outcome.video)
                moved = sign * (red_centre(frames[-1])[axis] - red_centre(frames[0])[axis])
                image = (reporter.image_done or ended) - reporter.started
                totals.append((image, ended - reporter.started - image, len(frames), moved))
                print(
                    f"| {seed} | {image:.1f} | {ended - reporter.started - image:.1f} | {len(frames)} | {moved:.2f} |"
                )
        finally:
            await services.close()
    if totals:
        image, video, frames, moved = (float(np.mean(column)) for column in zip(*totals, strict=True))
        print(f"| mean | {image:.1f} | {video:.1f} | {frames:.0f} | {moved:.2f} |")
        print(f"\nthe image takes {image / (image + video):.0%} of a --video job's time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--direction", choices=sorted(AXES), default="right")
    args = parser.parse_args()
    asyncio.run(run(args.seeds, args.direction))


if __name__ == "__main__":
    main()
