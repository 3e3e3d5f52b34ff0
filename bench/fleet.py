"""Worker-fleet figures on the tiny random-weight pipeline, printed as ratios from one run.

    python bench/fleet.py                       # Redis at redis://127.0.0.1:6379/15
    python bench/fleet.py --jobs 24 --runs 10   # steadier figures

1. throughput: jobs per minute through `kaika worker` processes, 1 worker vs 2 (each worker is
   one "device": one torch thread, as one GPU each), the same burst of jobs from several users.
2. latency: submit → result of one job at a time, CeleryExecutor with an idle worker vs the
   LocalExecutor in this process (one torch thread too), and the part of it outside the pipeline
   call (the job's own compute_seconds): for the fleet that is the broker hop, the Redis round
   trips and the PNG encode/decode of the images.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["OMP_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.executor.celery import CeleryExecutor  # noqa: E402
from pipeline.executor.celery_jobs import FleetConfig  # noqa: E402
from pipeline.executor.local import LocalExecutor  # noqa: E402
from pipeline.request import GenerationRequest  # noqa: E402
from testkit.fleet import WorkerProcess, delete_prefix  # noqa: E402
from testkit.tiny_pipeline import save_tiny_model  # noqa: E402

REQUEST = GenerationRequest(
    prompt="a lighthouse at dusk", seed=7, width=128, height=128, steps=10, num_images=2
)


async def burst(executor, jobs: int) -> float:
    """Jobs per minute for `jobs` jobs submitted at once by four users."""
    started = time.perf_counter()
    handles = [
        await executor.submit(REQUEST.replace(seed=i), owner=f"user{i % 4}", job_id=uuid.uuid4().hex)
        for i in range(jobs)
    ]
    for handle in handles:
        await handle.result()
    return jobs / (time.perf_counter() - started) * 60


async def one_job(executor) -> tuple[float, float]:
    """Seconds from submit to result, and how much of it was outside the pipeline call."""
    started = time.perf_counter()
    handle = await executor.submit(REQUEST, owner="solo")
    result = await handle.result()
    latency = time.perf_counter() - started
    return latency, latency - result.timings.compute_seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per throughput burst")
    parser.add_argument("--runs", type=int, default=6, help="paired single-job latency runs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as folder:
        model = save_tiny_model(Path(folder) / "tiny-sd")
        config = FleetConfig(redis_url=args.redis_url, key_prefix=f"kaika-bench-{uuid.uuid4().hex[:8]}")
        workers = [WorkerProcess(config, model, Path(folder) / "worker1.log")]
        local = await LocalExecutor.load({None: str(model)}, device="cpu", dtype="float32", max_batch=1)
        fleet = CeleryExecutor(config, default_model=str(model), in_flight=4)
        try:
            workers[0].wait_ready()
            await local.start()
            await fleet.start()
            await one_job(fleet)  # warm both paths
            await one_job(local)

            print(
                f"request: {REQUEST.width}x{REQUEST.height}, {REQUEST.steps} steps, {REQUEST.num_images} images; "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"
            )
            one = await burst(fleet, args.jobs)
            workers.append(WorkerProcess(config, model, Path(folder) / "worker2.log"))
            workers[1].wait_ready()
            two = await burst(fleet, args.jobs)
            print(
                f"1. throughput ({args.jobs} jobs, 4 users): 1 worker {one:.1f} jobs/min, "
                f"2 workers {two:.1f} jobs/min, ratio {two / one:.2f}"
            )

            workers.pop().stop()  # one idle worker, so the fleet job never waits for a busy one
            pairs = [(await one_job(fleet), await one_job(local)) for _ in range(args.runs)]
            fleet_s = statistics.median(f for (f, _), _ in pairs)
            local_s = statistics.median(loc for _, (loc, _) in pairs)
            ratio = statistics.median(f / loc for (f, _), (loc, _) in pairs)
            fleet_extra = statistics.median(extra for (_, extra), _ in pairs)
            local_extra = statistics.median(extra for _, (_, extra) in pairs)
            print(
                f"2. latency of one job ({args.runs} paired runs, medians): local {local_s * 1000:.0f} ms, "
                f"fleet {fleet_s * 1000:.0f} ms (ratio {ratio:.2f}); beyond the pipeline call itself the local "
                f"executor adds {local_extra * 1000:.0f} ms, the fleet {fleet_extra * 1000:.0f} ms "
                f"(so the fleet adds {(fleet_extra - local_extra) * 1000:.0f} ms per job)"
            )
        finally:
            await fleet.close()
            await local.close()
            for worker in workers:
                worker.stop()
            delete_prefix(args.redis_url, config.key_prefix)


if __name__ == "__main__":
    asyncio.run(main())
