"""The web companion's /metrics, /healthz and /readyz: the same answers as the bot's and the workers' metrics
ports (`service.operations.operations_answer`), from the companion's own aiohttp server.

Open to anyone who reaches the companion, as a metrics port is: they show counts and durations, never a
member, a prompt or an image. `add_operations_routes(app, services)` needs only the service objects.
"""

from __future__ import annotations

from aiohttp import web

from service.health import Readiness, service_readiness
from service.operations import operations_answer
from service.wiring import Services


def add_operations_routes(app: web.Application, services: Services) -> None:
    async def answer(request: web.Request) -> web.Response:
        # /readyz's checks are coroutines of this loop: run them here, then answer as a metrics port does.
        readiness = await service_readiness(services) if request.path == "/readyz" else Readiness({})
        reply = operations_answer(
            request.path, services.metrics.registry, lambda: readiness, request.headers.get("Accept", "")
        )
        return web.Response(
            status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type}
        )

    for path in ("/metrics", "/healthz", "/readyz"):
        app.router.add_get(path, answer)
