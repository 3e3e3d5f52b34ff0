"""The job metrics (/metrics) and readiness (/readyz) every front end serves, measured in the job service."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.errors import SettingError
from service.health import Readiness, service_readiness
from service.jobs import ButtonAction
from service.metrics import FAILURE_REASONS, exposition
from service.operations import OperationsServer, operations_answer
from service.wiring import Services
from storage.records import JobKind, JobStatus
from tests.fixtures.metrics import free_port, get, label_sets, samples, value
from tests.fixtures.reporters import RecordingReporter
from tests.fixtures.services import OpenServices

ADA = Requester(1, "ada")
GUILD = Place(5, 6)
STEPS = 3
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=STEPS, num_images=1)

JOB_METRICS = {
    "kaika_jobs_total": {"status", "kind", "model"},
    "kaika_job_failures_total": {"kind", "model", "reason"},
    "kaika_queue_depth": set(),
    "kaika_job_queue_seconds_count": {"model"},
    "kaika_job_duration_seconds_count": {"kind", "model"},
    "kaika_step_duration_seconds_count": {"model"},
    "kaika_acknowledgement_seconds_count": set(),
}


class StepSignal(RecordingReporter):
    def __init__(self) -> None:
        super().__init__()
        self.stepped = asyncio.Event()

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        await super().progress(step, total, preview_png)
        if step > 0:
            self.stepped.set()


def scraped(services: Services):
    body, content_type = exposition(services.metrics.registry)
    assert content_type.startswith("text/plain; version=0.0.4")
    return samples(body.decode())


async def test_every_metric_is_listed_with_zeros_before_the_first_job(open_services: OpenServices):
    services = await open_services(models=["sdxl=stabilityai/sdxl-turbo"])
    found = scraped(services)
    for name, labels in JOB_METRICS.items():
        sets = label_sets(found, name)
        assert sets, f"{name} is not listed"
        assert {frozenset(dict(s)) for s in sets} == {frozenset(labels)}, name
    # Every status and kind of the default model and of each MODELS name, at zero.
    for model in ("default", "sdxl"):
        for kind in JobKind:
            for status in JobStatus:
                assert value(found, "kaika_jobs_total", status=status, kind=kind, model=model) == 0
            for reason in FAILURE_REASONS:
                assert value(found, "kaika_job_failures_total", kind=kind, model=model, reason=reason) == 0
    assert value(found, "kaika_queue_depth") == 0
    assert value(found, "kaika_acknowledgement_seconds_count") == 0


async def test_a_job_moves_the_status_counters_and_its_durations(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert value(scraped(services), "kaika_queue_depth") == 1  # read from the executor at the scrape
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await pending.start(reporter)
    assert reporter.outcome is not None
    found = scraped(services)
    for status, count in {"queued": 1, "running": 1, "done": 1, "failed": 0, "cancelled": 0}.items():
        assert value(found, "kaika_jobs_total", status=status, kind="imagine", model="default") == count, (
            status
        )
    assert value(found, "kaika_job_queue_seconds_count", model="default") == 1
    assert value(found, "kaika_job_duration_seconds_count", kind="imagine", model="default") == 1
    duration = value(found, "kaika_job_duration_seconds_sum", kind="imagine", model="default")
    assert duration is not None and 0 < duration < 60
    # The steps after the first: the first also holds the model's start.
    assert value(found, "kaika_step_duration_seconds_count", model="default") == STEPS - 1
    assert value(found, "kaika_queue_depth") == 0

    # U1 copies the image: a job of its own kind, done without a queue.
    upscale = await services.jobs.press(ADA, GUILD, ButtonAction.UPSCALE, pending.job.id, 0)
    async with asyncio.timeout(60):
        await upscale.start(RecordingReporter())
    found = scraped(services)
    assert value(found, "kaika_jobs_total", status="done", kind="upscale", model="default") == 1
    assert value(found, "kaika_jobs_total", status="done", kind="imagine", model="default") == 1


async def test_failures_are_counted_by_reason(services: Services):
    shown = await services.jobs.imagine(ADA, GUILD, REQUEST)
    await shown.abandon("Discord did not take the acknowledgement.")  # its front end could not show it
    found = scraped(services)
    assert value(found, "kaika_jobs_total", status="queued", kind="imagine", model="default") == 1
    assert value(found, "kaika_jobs_total", status="failed", kind="imagine", model="default") == 1
    labels = {"kind": "imagine", "model": "default"}
    assert value(found, "kaika_job_failures_total", **labels, reason="unacknowledged") == 1
    assert value(found, "kaika_job_failures_total", **labels, reason="generation") == 0

    deleted = await services.jobs.imagine(ADA, GUILD, REQUEST.replace(steps=100))
    reporter = StepSignal()
    running = deleted.start(reporter)
    async with asyncio.timeout(60):
        await reporter.stepped.wait()  # it runs
        await services.jobs.delete(deleted.job.id, ADA)
        await running
    assert reporter.failure in ("This job was deleted.", "The job was cancelled.")
    found = scraped(services)
    assert value(found, "kaika_jobs_total", status="cancelled", kind="imagine", model="default") == 1
    assert value(found, "kaika_jobs_total", status="failed", kind="imagine", model="default") == 1


async def test_two_services_count_apart(open_services: OpenServices):
    first, second = await open_services(), await open_services()
    pending = await first.jobs.imagine(ADA, GUILD, REQUEST)
    async with asyncio.timeout(60):
        await pending.start(RecordingReporter())
    labels = {"status": "done", "kind": "imagine", "model": "default"}
    assert value(scraped(first), "kaika_jobs_total", **labels) == 1
    assert value(scraped(second), "kaika_jobs_total", **labels) == 0


async def test_a_ready_service(services: Services):
    ready = await service_readiness(services)
    assert (ready.status, ready.text()) == (200, "ready\ndatabase: ok\nexecutor: ok\n")


@pytest.mark.postgres
async def test_readiness_names_a_database_that_is_down(open_services: OpenServices, postgres_outage):
    url, proxy = postgres_outage
    services = await open_services(database_url=url)
    assert (await service_readiness(services)).ready
    proxy.cut()
    down = await service_readiness(services)
    assert down.status == 503 and down.failing == ["database"]
    assert down.text().startswith("not ready: database\ndatabase: cannot be reached (")
    assert down.text().endswith("); check DATABASE_URL and that the database runs.\nexecutor: ok\n")
    proxy.restore()
    assert (await service_readiness(services)).ready


async def test_the_operations_port_answers_each_path(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    async with asyncio.timeout(60):
        await pending.start(RecordingReporter())
    readiness = {"now": Readiness({"database": None, "executor": None})}
    server = OperationsServer("127.0.0.1", free_port(), services.metrics.registry, lambda: readiness["now"])
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, content_type, body = await asyncio.to_thread(get, f"{base}/metrics")
        assert (status, content_type.split(";")[0]) == (200, "text/plain")
        labels = {"status": "done", "kind": "imagine", "model": "default"}
        assert value(samples(body), "kaika_jobs_total", **labels) == 1
        assert await asyncio.to_thread(get, f"{base}/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        assert (await asyncio.to_thread(get, f"{base}/readyz"))[::2] == (
            200,
            "ready\ndatabase: ok\nexecutor: ok\n",
        )
        readiness["now"] = Readiness({"database": "cannot be reached (refused).", "executor": None})
        assert (await asyncio.to_thread(get, f"{base}/readyz"))[::2] == (
            503,
            "not ready: database\ndatabase: cannot be reached (refused).\nexecutor: ok\n",
        )
        status, _, body = await asyncio.to_thread(get, f"{base}/nothing")
        assert (status, body) == (404, "Not found; this port serves /metrics, /healthz, /readyz.\n")
        with pytest.raises(SettingError) as taken:
            OperationsServer("127.0.0.1", server.port, services.metrics.registry, lambda: readiness["now"])
        assert str(taken.value).startswith(
            f"METRICS_PORT={server.port}: cannot listen on 127.0.0.1:{server.port} ("
        )
    finally:
        server.close()


def test_openmetrics_for_a_scraper_that_asks_for_it(services: Services):
    answer = operations_answer(
        "/metrics",
        services.metrics.registry,
        lambda: Readiness({}),
        "application/openmetrics-text; version=1.0.0",
    )
    assert answer.content_type.startswith("application/openmetrics-text")
    assert answer.body.endswith(b"# EOF\n")
