"""`kaika worker` subprocesses and fleets with keys of their own, for the fleet tests and bench/fleet.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from pipeline.executor.celery_jobs import FleetConfig

WORKER_START_TIMEOUT = 90.0
# Short enough that a job abandoned by a killed worker is redelivered within seconds, long enough
# that no test job (a few seconds of compute at most) outlives it on a busy machine.
TEST_VISIBILITY_TIMEOUT = 8


class WorkerProcess:
    """A `kaika worker` subprocess, started the way an operator starts one (settings from env)."""

    def __init__(
        self, config: FleetConfig, model_dir: Path, log_path: Path, settings: dict[str, str] | None = None
    ) -> None:
        """`settings`: more environment variables for it (WORKER_METRICS_PORT, …) over the fleet's."""
        env = dict(os.environ)
        env.update(
            MODEL=str(model_dir),
            DEVICE="cpu",
            DTYPE="float32",
            REDIS_URL=config.redis_url,
            CELERY_KEY_PREFIX=config.key_prefix,
            CELERY_VISIBILITY_TIMEOUT=str(config.visibility_timeout),
            CELERY_RESULT_TTL=str(config.result_ttl),
            CELERY_MAX_RETRIES=str(config.max_retries),
            CELERY_LEASE_SECONDS=str(config.lease_seconds),
            LOG_LEVEL="INFO",
            OMP_NUM_THREADS="1",  # two workers share two cores; one thread each, as one GPU each
        )
        env.update(settings or {})
        self.log_path = log_path
        self._log = log_path.open("wb")
        # cwd outside the repository, so a developer's .env cannot change what is tested.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"],
            cwd=log_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"kaika worker exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            time.sleep(0.2)
        raise AssertionError(f"kaika worker was not ready after {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no warm shutdown, no requeue; its job's lease runs out and the bot queues it again."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def hang(self) -> None:
        """SIGSTOP: every thread stops where it is and its connections stay open, as a hung driver would."""
        self.process.send_signal(signal.SIGSTOP)

    def wake(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def is_named(self, worker: str) -> bool:
        """Whether `worker` (a job record's worker name, `kaika-<pid>@<host>`) is this process."""
        return worker.startswith(f"kaika-{self.process.pid}@")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.wake()  # a hung worker would never see the SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key of a fleet (its jobs, streams, images and Celery queues)."""
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def make_fleet_config(url: str, **settings: int) -> FleetConfig:
    """A fleet of its own on the test Redis: a fresh key prefix, quick redelivery (`settings` override)."""
    values = {"visibility_timeout": TEST_VISIBILITY_TIMEOUT, "result_ttl": 600, "max_retries": 2, **settings}
    return FleetConfig(redis_url=url, key_prefix=f"kaika-test-{uuid.uuid4().hex[:8]}", **values)


def own_fleet(url: str, **settings: int) -> Iterator[FleetConfig]:
    """For a fixture: `yield from own_fleet(url)` gives a fresh fleet and removes its keys afterwards."""
    config = make_fleet_config(url, **settings)
    yield config
    delete_prefix(url, config.key_prefix)
