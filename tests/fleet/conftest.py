"""Fixtures for the worker fleet: the real Redis (own key prefix, cleaned up) and real `kaika worker`
processes serving the tiny test model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from pipeline.executor.celery import CeleryExecutor
from pipeline.executor.celery_jobs import FleetConfig
from service.settings import Settings
from testkit.fleet import WorkerProcess, own_fleet


@pytest.fixture(scope="session")
def fleet_redis_url(request: pytest.FixtureRequest) -> str:
    url = request.config.getoption("--redis-url")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if request.config.getoption("--require-services"):
            pytest.fail(f"Redis at {url} is unreachable ({error}) and --require-services was given")
        pytest.skip(f"Redis at {url} is unreachable ({error}); the fleet tests need it")
    return url


@pytest.fixture(scope="session")
def fleet_config(fleet_redis_url: str) -> Iterator[FleetConfig]:
    """The fleet most tests share (a test module that stops workers brings its own)."""
    yield from own_fleet(fleet_redis_url)


@pytest.fixture(scope="session")
def start_worker(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(config: FleetConfig, *, wait: bool = True, **settings: str) -> WorkerProcess:
        folder = tmp_path_factory.mktemp("worker")
        worker = WorkerProcess(config, tiny_model_dir, folder / "worker.log", settings)
        workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="session")
def worker(start_worker: Callable[..., WorkerProcess], fleet_config: FleetConfig) -> WorkerProcess:
    """One worker shared by the tests of the shared fleet."""
    return start_worker(fleet_config)


@pytest.fixture
async def make_executor(fleet_config: FleetConfig, tiny_model_dir: Path):
    """Factory of started executors on the module's fleet; all are closed after the test."""
    executors: list[CeleryExecutor] = []

    async def make(**options: object) -> CeleryExecutor:
        options.setdefault("default_model", str(tiny_model_dir))
        options.setdefault("preview_every", 2)
        executor = CeleryExecutor(fleet_config, **options)  # type: ignore[arg-type]
        await executor.start()
        executors.append(executor)
        return executor

    yield make
    for executor in executors:
        await executor.close()


@pytest.fixture
def fleet_settings(fleet_config: FleetConfig, tiny_model_dir: Path, tmp_path: Path) -> Settings:
    """The bot's settings for EXECUTOR=celery on the shared fleet, storing under the test's tmp_path."""
    return Settings(
        _env_file=None,
        executor="celery",
        redis_url=fleet_config.redis_url,
        celery_key_prefix=fleet_config.key_prefix,
        celery_visibility_timeout=fleet_config.visibility_timeout,
        celery_lease_seconds=fleet_config.lease_seconds,
        model=str(tiny_model_dir),
        data_dir=tmp_path / "data",
        preview_every=1,
    )
