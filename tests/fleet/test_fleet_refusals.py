"""A job the fleet cannot take (Redis unreachable) is refused with a message and leaves no record: no failed
job in the figures, nothing against the quota."""

from __future__ import annotations

import pytest
from redis.connection import parse_url

from pipeline.executor.celery import FleetUnavailable
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.settings import Settings
from service.wiring import Services
from testkit.outage import OutageProxy

ADA = Requester(1, "ada")
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)


async def test_a_job_refused_because_redis_is_unreachable_is_not_recorded(fleet_settings: Settings):
    where = parse_url(fleet_settings.redis_url)
    with OutageProxy(where.get("host", "127.0.0.1"), where.get("port", 6379)) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/{where.get('db', 0)}"
        services = await Services.open(fleet_settings.model_copy(update={"redis_url": url}))
        try:
            proxy.cut()
            with pytest.raises(FleetUnavailable, match="cannot be reached right now; try again in a minute"):
                await services.jobs.imagine(ADA, Place(5, 6), REQUEST)
            proxy.restore()
            storage = services.storage
            assert await storage.jobs.recent_for_user(ADA.user_id) == []
            assert await storage.jobs.jobs_last_24h(ADA.user_id) == 0
            report = await storage.stats.usage("24h")
            assert (report.jobs, report.failed, report.failure_rate) == (0, 0, None)
            assert services.jobs.in_flight(ADA.user_id) == 0
        finally:
            await services.close()
