"""/metrics, /healthz and /readyz of the bot and of each `kaika worker`, on a port of their own (METRICS_PORT,
WORKER_METRICS_PORT).

What each path answers is decided here once (`operations_answer`); the web companion answers the same from
its own routes (`web/operations.py`). The bot and the workers serve it with the standard library's threaded
HTTP server, as prometheus_client's own `start_http_server` does: a scrape never waits for the bot's event
loop or a worker's running job, and neither waits for a scrape.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from service.errors import SettingError
from service.health import READY_TIMEOUT, Readiness
from service.metrics import exposition

log = logging.getLogger(__name__)

PATHS = ("/metrics", "/healthz", "/readyz")
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def operations_answer(
    path: str, registry: CollectorRegistry, readiness: Callable[[], Readiness], accept: str = ""
) -> Answer:
    """The answer to a GET of `path`: the metrics of `registry`, "ok" while the process runs, or
    `readiness()` (200 when ready, 503 naming the failing parts); 404 for any other path."""
    if path == "/metrics":
        body, content_type = exposition(registry, accept)
        return Answer(200, content_type, body)
    if path == "/healthz":
        return Answer(200, TEXT, b"ok\n")
    if path == "/readyz":
        ready = readiness()
        return Answer(ready.status, TEXT, ready.text().encode())
    return Answer(404, TEXT, f"Not found; this port serves {', '.join(PATHS)}.\n".encode())


def on_loop(
    loop: asyncio.AbstractEventLoop, check: Callable[[], Awaitable[Readiness]]
) -> Callable[[], Readiness]:
    """`check` (a coroutine function of the process's event loop `loop`) as a readiness an
    `OperationsServer` thread can call; a loop that does not run it in time is itself what is not ready."""

    def readiness() -> Readiness:
        try:
            future = asyncio.run_coroutine_threadsafe(check(), loop)
        except RuntimeError:  # the loop is closed
            return Readiness({"event loop": "closed: the process is stopping."})
        try:
            return future.result(READY_TIMEOUT + 1)
        except TimeoutError:
            future.cancel()
            return Readiness(
                {"event loop": f"no answer within {READY_TIMEOUT + 1:g} s: the process is stuck."}
            )

    return readiness


class OperationsServer:
    """`operations_answer` over HTTP on `host`:`port`, from a daemon thread; `close()` stops it.

    `readiness` runs in the server's thread: a check that needs an event loop goes through
    `asyncio.run_coroutine_threadsafe`. `setting` names the port's setting in the error of a port in use.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        readiness: Callable[[], Readiness],
        *,
        setting: str = "METRICS_PORT",
    ) -> None:
        handler = _handler(registry, readiness)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise SettingError(
                f"{setting}={port}: cannot listen on {host}:{port} ({error.strerror or error}); "
                "choose a free port (one per process on a machine), or 0 for none."
            ) from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-{port}", daemon=True
        )
        self._thread.start()
        log.info("Serving %s on http://%s:%d", ", ".join(PATHS), host, self.port)

    @property
    def port(self) -> int:
        """The port listened on (the one picked by the system when 0 was asked for)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(registry: CollectorRegistry, readiness: Callable[[], Readiness]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                answer = operations_answer(path, registry, readiness, self.headers.get("Accept", ""))
            except Exception:
                log.exception("Answering %s failed", path)
                answer = Answer(500, TEXT, b"error; see the log\n")
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
