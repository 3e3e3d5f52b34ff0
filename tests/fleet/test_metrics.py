"""A `kaika worker`'s WORKER_METRICS_PORT, and the bot's metrics and readiness on the fleet: the counters move
after a job, and /readyz names Redis when it is cut off."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from pipeline.executor.celery_jobs import FleetConfig
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.health import service_readiness
from service.metrics import exposition
from service.settings import Settings
from service.wiring import Services
from testkit.fleet import own_fleet
from testkit.outage import OutageProxy
from tests.fixtures.metrics import free_port, get, samples, value
from tests.fixtures.reporters import outcome_of

ADA = Requester(1, "ada")
GUILD = Place(5, 6)
STEPS = 3
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=STEPS, num_images=1)


@pytest.fixture
def proxied_fleet(fleet_redis_url: str) -> Iterator[tuple[FleetConfig, OutageProxy]]:
    """A fleet of its own whose every Redis connection (the worker's and the bot's) goes through a proxy."""
    parts = urlsplit(fleet_redis_url)
    with OutageProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
        for config in own_fleet(url):
            yield config, proxy
            proxy.restore()  # so its keys can be removed


async def scrape(url: str) -> tuple[int, str]:
    status, _, body = await asyncio.to_thread(get, url)
    return status, body


@pytest.mark.slow
async def test_a_worker_and_the_bot_count_a_fleet_job_and_name_a_lost_redis(
    start_worker, proxied_fleet, tiny_model_dir: Path, tmp_path: Path
):
    config, proxy = proxied_fleet
    port = free_port()
    start_worker(config, WORKER_METRICS_PORT=str(port))
    worker = f"http://127.0.0.1:{port}"
    model = str(tiny_model_dir)  # a worker's model label is its MODEL

    status, body = await scrape(f"{worker}/metrics")
    before = samples(body)
    assert status == 200
    for outcome in ("finished", "failed", "cancelled", "lost", "duplicate", "skipped"):
        assert value(before, "kaika_worker_jobs_total", model=model, outcome=outcome) == 0
    assert value(before, "kaika_worker_job_duration_seconds_count", model=model) == 0
    assert value(before, "kaika_worker_model_loaded", model=model) == 1
    assert value(before, "kaika_worker_busy") == 0
    assert await scrape(f"{worker}/healthz") == (200, "ok\n")
    assert await scrape(f"{worker}/readyz") == (200, "ready\nredis: ok\nmodel: ok\n")

    settings = Settings(
        _env_file=None,
        executor="celery",
        redis_url=config.redis_url,
        celery_key_prefix=config.key_prefix,
        model=model,
        data_dir=tmp_path / "data",
        preview_every=1,
    )
    services = await Services.open(settings)
    try:
        assert (await service_readiness(services)).ready
        await outcome_of(await services.jobs.imagine(ADA, GUILD, REQUEST))

        after = samples((await scrape(f"{worker}/metrics"))[1])
        assert value(after, "kaika_worker_jobs_total", model=model, outcome="finished") == 1
        assert value(after, "kaika_worker_job_duration_seconds_count", model=model) == 1
        assert value(after, "kaika_worker_job_queue_seconds_count", model=model) == 1
        assert value(after, "kaika_worker_step_duration_seconds_count", model=model) == STEPS - 1
        assert value(after, "kaika_worker_busy") == 0
        bot = samples(exposition(services.metrics.registry)[0].decode())
        assert value(bot, "kaika_jobs_total", status="done", kind="imagine", model="default") == 1

        proxy.cut()
        status, body = await scrape(f"{worker}/readyz")
        assert status == 503
        assert body.startswith(
            f"not ready: redis\nredis: cannot reach Redis at 127.0.0.1:{proxy.port} (REDIS_URL): "
        )
        assert body.endswith("\nmodel: ok\n")
        assert await scrape(f"{worker}/healthz") == (200, "ok\n")  # alive all the same
        down = await service_readiness(services)
        assert down.status == 503 and "redis" in down.failing
        assert down.problems["redis"].startswith(
            f"cannot reach Redis at 127.0.0.1:{proxy.port} (REDIS_URL): "
        )
        proxy.restore()
        assert (await service_readiness(services)).ready
    finally:
        proxy.restore()
        await services.close()


@pytest.mark.slow
def test_a_worker_metrics_port_in_use_is_one_line_naming_the_setting(start_worker, fleet_config):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(fleet_config, wait=False, WORKER_METRICS_PORT=str(port))
        assert worker.process.wait(timeout=90) == 2
    assert worker.log().rstrip().splitlines()[-1] == (
        f"kaika worker: WORKER_METRICS_PORT={port}: cannot listen on 127.0.0.1:{port} (Address already in "
        "use); choose a free port (one per process on a machine), or 0 for none."
    )


def test_a_worker_is_not_ready_while_its_model_loads_nor_without_redis(fleet_config, tiny_model_dir: Path):
    from pipeline.executor.celery_worker import EngineOptions, WorkerRuntime

    runtime = WorkerRuntime(fleet_config, EngineOptions(source=str(tiny_model_dir)))
    assert runtime.health() == {
        "redis": None,
        "model": "still loading; it takes no job before it is loaded.",
    }
    closed = free_port()
    elsewhere = WorkerRuntime(
        dataclasses.replace(fleet_config, redis_url=f"redis://127.0.0.1:{closed}/0"), EngineOptions(source="")
    )
    problem = elsewhere.health()["redis"]
    assert problem is not None and problem.startswith(
        f"cannot reach Redis at 127.0.0.1:{closed} (REDIS_URL): "
    )
    assert elsewhere.metrics.model == "demo"  # the built-in model's label
