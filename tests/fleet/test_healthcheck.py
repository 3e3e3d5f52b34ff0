"""`kaika healthcheck --worker`: a worker is healthy when it answers a Celery ping through REDIS_URL, or is
busy with a job younger than CELERY_VISIBILITY_TIMEOUT (its one thread cannot answer before the job
ends); otherwise status 1 and one line saying why. A real `kaika worker`, and status files written as a
worker writes its own for the cases a real worker cannot be put in on demand."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.executor.celery_jobs import FleetConfig
from service import health
from testkit.fleet import own_fleet


@pytest.fixture
def fleet(fleet_redis_url: str) -> Iterator[FleetConfig]:
    yield from own_fleet(fleet_redis_url)


@pytest.fixture
def fleet_env(fleet: FleetConfig, monkeypatch, tmp_path: Path) -> FleetConfig:
    """The settings `kaika healthcheck` reads, for `fleet`."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("REDIS_URL", fleet.redis_url)
    monkeypatch.setenv("CELERY_KEY_PREFIX", fleet.key_prefix)
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", str(fleet.visibility_timeout))
    return fleet


@pytest.fixture
def status_folder(monkeypatch, tmp_path: Path) -> Path:
    """Worker status files of this test's own (a quick ping: nobody is meant to answer it)."""
    folder = tmp_path / "status"
    folder.mkdir()
    monkeypatch.setattr(health, "_status_folder", lambda: folder)
    monkeypatch.setattr(health, "PING_TIMEOUT", 0.5)
    return folder


def unhealthy(kaika) -> str:
    run = kaika("healthcheck", "--worker")
    assert (run.status, run.out) == (1, ""), run
    assert run.err.startswith("kaika healthcheck: ") and run.err.count("\n") == 1, run.err
    return run.err.removeprefix("kaika healthcheck: ").removesuffix("\n")


def test_a_running_worker_is_healthy_and_a_stopped_one_is_not(kaika, fleet_env, start_worker):
    worker = start_worker(fleet_env)
    deadline = time.monotonic() + 30
    while (run := kaika("healthcheck", "--worker")).status != 0 and time.monotonic() < deadline:
        time.sleep(0.5)  # its status file is written as it becomes ready
    assert (run.status, run.out, run.err) == (0, "", "")

    worker.stop()  # SIGTERM: Celery's warm shutdown, and its status file goes
    assert unhealthy(kaika) == "no kaika worker is running here (or it has not finished starting)."


def test_a_worker_that_does_not_answer(kaika, fleet_env, status_folder):
    health.write_worker_status(fleet_env.key_prefix, "kaika-1@nowhere", None)
    assert unhealthy(kaika) == "worker kaika-1@nowhere does not answer a ping through REDIS_URL."


def test_a_worker_busy_with_a_job_is_healthy_until_the_visibility_timeout(kaika, fleet_env, status_folder):
    health.write_worker_status(fleet_env.key_prefix, "kaika-1@nowhere", time.time() - 2)
    run = kaika("healthcheck", "--worker")
    assert (run.status, run.err) == (0, "")

    health.write_worker_status(fleet_env.key_prefix, "kaika-1@nowhere", time.time() - 60)
    message = unhealthy(kaika)
    assert message.startswith("worker kaika-1@nowhere has run one job for 6")
    assert message.endswith(
        f"s, longer than CELERY_VISIBILITY_TIMEOUT ({fleet_env.visibility_timeout} s): it is stuck."
    )


def test_workers_of_another_fleet_or_gone_do_not_count(kaika, fleet_env, status_folder):
    health.write_worker_status("another-fleet", "kaika-1@nowhere", None)  # a live process, another fleet
    gone = status_folder / "kaika-worker-999999999.json"  # a process that no longer runs
    gone.write_text((status_folder / f"kaika-worker-{os.getpid()}.json").read_text())
    assert unhealthy(kaika) == "no kaika worker is running here (or it has not finished starting)."


def test_redis_that_cannot_be_reached(kaika, fleet_env, status_folder, monkeypatch):
    health.write_worker_status(fleet_env.key_prefix, "kaika-1@nowhere", None)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert unhealthy(kaika).startswith("cannot reach Redis at REDIS_URL (")
