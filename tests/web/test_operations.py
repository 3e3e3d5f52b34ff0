"""The web companion's /metrics, /healthz and /readyz (web/operations.py) over real services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.wiring import Services
from tests.fixtures.metrics import samples, value
from tests.fixtures.reporters import outcome_of
from tests.fixtures.services import OpenServices
from web.operations import add_operations_routes

ADA = Requester(1, "ada")
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)

Client = Callable[[Services], Awaitable[TestClient]]


@pytest.fixture
async def client_of() -> AsyncIterator[Client]:
    """`await client_of(services)`: a test client of an application with only the operations routes."""
    clients: list[TestClient] = []

    async def make(services: Services) -> TestClient:
        app = web.Application()
        add_operations_routes(app, services)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_metrics_move_after_a_job_made_through_the_service(open_services: OpenServices, client_of):
    services = await open_services()
    client = await client_of(services)
    answer = await client.get("/metrics")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    done = {"status": "done", "kind": "imagine", "model": "default"}
    assert value(samples(await answer.text()), "kaika_jobs_total", **done) == 0

    await outcome_of(await services.jobs.imagine(ADA, Place(5, 6), REQUEST))
    found = samples(await (await client.get("/metrics")).text())
    assert value(found, "kaika_jobs_total", **done) == 1
    assert value(found, "kaika_job_duration_seconds_count", kind="imagine", model="default") == 1

    openmetrics = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")


async def test_healthz_and_readyz(open_services: OpenServices, client_of):
    client = await client_of(await open_services())
    healthz = await client.get("/healthz")
    assert (healthz.status, await healthz.text()) == (200, "ok\n")
    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.text()) == (200, "ready\ndatabase: ok\nexecutor: ok\n")


@pytest.mark.postgres
async def test_readyz_names_a_database_that_is_down(open_services: OpenServices, client_of, postgres_outage):
    url, proxy = postgres_outage
    client = await client_of(await open_services(database_url=url))
    proxy.cut()
    readyz = await client.get("/readyz")
    text = await readyz.text()
    assert readyz.status == 503 and text.startswith("not ready: database\ndatabase: cannot be reached (")
    assert text.endswith("\nexecutor: ok\n")
    assert (await client.get("/healthz")).status == 200  # alive all the same
    proxy.restore()
    assert (await client.get("/readyz")).status == 200


async def test_the_executor_is_named_once_it_stops(open_services: OpenServices, client_of):
    services = await open_services()
    client = await client_of(services)
    await services.executor.close()
    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.text()) == (
        503,
        "not ready: executor\ndatabase: ok\nexecutor: it is shutting down.\n",
    )
