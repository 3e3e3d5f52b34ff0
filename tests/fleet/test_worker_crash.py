"""A worker killed mid-job (kill -9) on a fleet with a short visibility timeout: the job goes to another
worker and its result arrives once (`test_worker_lease.py` does the same with the default settings).
Also the worker command's answer to a model it cannot load."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from pipeline.executor.base import Finished, Started, Step
from pipeline.executor.celery_jobs import FleetConfig
from testkit.fleet import WorkerProcess, own_fleet
from tests.fixtures.fleet import LONG, collect, first_step, job_record, stream_types

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet_config(fleet_redis_url: str) -> Iterator[FleetConfig]:
    """These tests kill and stop workers, so they get a fleet of their own."""
    yield from own_fleet(fleet_redis_url)


@pytest.fixture(scope="module")
def worker(start_worker: Callable[..., WorkerProcess], fleet_config: FleetConfig) -> WorkerProcess:
    return start_worker(fleet_config)


async def test_a_job_whose_worker_is_killed_is_redelivered_and_finishes_once(
    start_worker, make_executor, fleet_config, request
):
    doomed = start_worker(fleet_config)
    executor = await make_executor()
    handle = await executor.submit(LONG, owner="alice")
    await first_step(handle)
    doomed.kill()
    assert job_record(fleet_config, handle.job_id)["state"] == "started"

    rescuer = request.getfixturevalue("worker")  # started only now; the module's next test stops it
    events = await collect(handle, within=120)

    assert sum(isinstance(e, Finished) for e in events) == 1 and isinstance(events[-1], Finished)
    assert sum(isinstance(e, Started) for e in events) == 1  # the caller is told once
    assert [e.step for e in events if isinstance(e, Step)][-1] == 100
    result = await handle.result()
    assert result.seeds == [3, 4] and len(result.images) == 2
    record = job_record(fleet_config, handle.job_id)
    assert record["attempts"] == "2" and record["state"] == "finished"
    # Both the reaper and the broker's visibility timeout may hand the job out again: it runs once, and
    # the other delivery finds it held or finished and does nothing.
    assert rescuer.log().count(f"Job {handle.job_id} redelivered (attempt 2)") == 1
    assert f"Job {handle.job_id} redelivered (attempt 3)" not in rescuer.log()
    assert stream_types(fleet_config, handle.job_id).count("finished") == 1


async def test_a_worker_told_to_stop_finishes_its_running_job_first(worker, make_executor):
    executor = await make_executor()
    handle = await executor.submit(LONG, owner="alice")
    await first_step(handle)
    worker.process.terminate()  # SIGTERM, as systemd, docker stop or Ctrl-C
    result = await asyncio.wait_for(handle.result(), 90)
    assert len(result.images) == 2
    assert await asyncio.to_thread(worker.process.wait, 60) == 0
    assert "Warm shutdown" in worker.log()


def run_worker_command(tmp_path, **settings: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEVICE="cpu", **settings)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_worker_command_names_a_model_it_cannot_load(tmp_path, fleet_config):
    done = run_worker_command(
        tmp_path,
        MODEL=str(tmp_path / "missing-model"),
        REDIS_URL=fleet_config.redis_url,
        CELERY_KEY_PREFIX=fleet_config.key_prefix,
    )
    assert done.returncode == 2
    assert "kaika worker:" in done.stderr and "MODEL" in done.stderr


def test_the_worker_command_says_when_redis_is_unreachable_before_loading_a_model(tmp_path):
    done = run_worker_command(
        tmp_path, MODEL=str(tmp_path / "missing-model"), REDIS_URL="redis://:hush@127.0.0.1:1/0"
    )
    assert done.returncode == 2
    assert "kaika worker: cannot reach Redis at 127.0.0.1:1 (REDIS_URL)" in done.stderr
    assert "hush" not in done.stderr  # the password stays out of the message
