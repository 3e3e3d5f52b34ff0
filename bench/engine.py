"""Generation engine figures on the tiny random-weight pipeline, printed as ratios from one run.

    python bench/engine.py            # 256x256, 20 steps
    python bench/engine.py --runs 5   # more repetitions, steadier medians

1. executor end to end / raw pipe() for the same 4-image request      (target <= 1.05)
2. 8 compatible single-image requests: one at a time / batched         (throughput ratio)
3. preview cost: extra time with previews every 5 steps (and every 1)  (target <= 5%)
4. peak RSS with txt2img + img2img + inpaint loaded / txt2img alone    (target <= 1.1; subprocesses,
   on a wider random UNet so the weights are a visible part of the process)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.engine import Engine  # noqa: E402
from pipeline.executor.local import LocalExecutor  # noqa: E402
from pipeline.request import GenerationRequest  # noqa: E402
from testkit.tiny_pipeline import save_tiny_model  # noqa: E402

SIZE, STEPS = 256, 20


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def paired(first, second, runs: int) -> tuple[float, float, float]:
    """Median seconds of each action and the median of their per-run ratios (first / second).

    The two run alternately, so load from other processes on the machine hits both alike.
    """
    pairs = [(seconds(first), seconds(second)) for _ in range(runs)]
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(a / b for a, b in pairs),
    )


def request(prompt: str = "a lighthouse at dusk", **changes) -> GenerationRequest:
    base = GenerationRequest(prompt=prompt, seed=7, width=SIZE, height=SIZE, steps=STEPS, guidance=7.5)
    return base.replace(**changes)


async def through_executor(engine: Engine, requests: list[GenerationRequest], max_batch: int) -> None:
    executor = LocalExecutor({None: engine}, max_batch=max_batch, preview_every=0)
    handles = [await executor.submit(r, owner=f"user{i}") for i, r in enumerate(requests)]
    await executor.start()
    await asyncio.gather(*(handle.result() for handle in handles))
    await executor.close()


def raw_pipe(engine: Engine, job: GenerationRequest) -> None:
    engine.txt2img(
        prompt=[job.prompt] * job.num_images,
        height=job.height,
        width=job.width,
        num_inference_steps=job.steps,
        guidance_scale=job.guidance,
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in job.seeds],
    )


RSS_SCRIPT = """
import json, resource, sys, torch
from PIL import Image
from pipeline.images import encode_png
from pipeline.request import GenerationRequest, Mode
model, which = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
job = GenerationRequest(prompt="a lighthouse", seed=1, width=256, height=256, steps=4, num_images=2)
if which == "txt2img":
    from diffusers import AutoPipelineForText2Image
    pipe = AutoPipelineForText2Image.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe(prompt=[job.prompt] * 2, height=256, width=256, num_inference_steps=4)
else:
    from pipeline.engine import Engine
    engine = Engine.load(model, device="cpu", dtype="float32")
    (first,) = engine.run([job])
    source = encode_png(first.images[0])
    mask = encode_png(Image.new("L", (256, 256), 255))
    engine.run([job.replace(mode=Mode.IMG2IMG, source_image=source, strength=0.5)])
    engine.run([job.replace(mode=Mode.INPAINT, source_image=source, mask_image=mask, strength=1.0)])
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss_mib(model: Path, which: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(model), which],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return json.loads(output.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions per timing (median is reported)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 keeps a shared machine's figures steady)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        tiny = save_tiny_model(Path(folder) / "tiny")
        engine = Engine.load(str(tiny), device="cpu", dtype="float32")
        four = request()
        engine.run([four.replace(steps=2)])  # warm up kernels for these shapes
        raw_pipe(engine, four.replace(steps=2))

        executor, raw, overhead = paired(
            lambda: asyncio.run(through_executor(engine, [four], max_batch=4)),
            lambda: raw_pipe(engine, four),
            args.runs,
        )

        singles = [request(f"picture {i}", seed=100 + i, num_images=1) for i in range(8)]
        engine.run(singles[:1])
        one_at_a_time, batched, speedup = paired(
            lambda: asyncio.run(through_executor(engine, singles, max_batch=1)),
            lambda: asyncio.run(through_executor(engine, singles, max_batch=8)),
            args.runs,
        )

        _, _, cost_5 = paired(
            lambda: engine.run([four], preview_every=5, on_step=lambda *_: None),
            lambda: engine.run([four], preview_every=0),
            args.runs,
        )
        _, _, cost_1 = paired(
            lambda: engine.run([four], preview_every=1, on_step=lambda *_: None),
            lambda: engine.run([four], preview_every=0),
            args.runs,
        )

        wide = save_tiny_model(Path(folder) / "wide", width=256)
        rss_txt2img = peak_rss_mib(wide, "txt2img")
        rss_all = peak_rss_mib(wide, "all")

    threads = torch.get_num_threads()
    print(
        f"tiny pipeline, {SIZE}x{SIZE}, {STEPS} steps, CPU x{threads} threads, median of {args.runs} alternating runs"
    )
    print(
        f"1. executor / raw pipe() (4 images):         {overhead:.3f}  ({executor:.2f}s vs {raw:.2f}s; target <= 1.05)"
    )
    print(
        f"2. 8 single images, one at a time / batched: {speedup:.2f}x throughput ({one_at_a_time:.2f}s vs {batched:.2f}s)"
    )
    print(
        f"3. preview cost every 5 steps:               {100 * (cost_5 - 1):+.1f}%  (every step {100 * (cost_1 - 1):+.1f}%; target <= 5%)"
    )
    print(
        f"4. peak RSS all three / txt2img alone:       {rss_all / rss_txt2img:.3f}  ({rss_all:.0f} vs {rss_txt2img:.0f} MiB; target <= 1.1)"
    )


if __name__ == "__main__":
    main()
