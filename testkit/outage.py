"""A TCP forwarder that can cut a service off and bring it back, for outage tests and bench/reliability.py.

Point a client at `proxy.port` instead of the service's own port; `cut()` drops every open connection
and refuses new ones (each is closed as soon as it is accepted), as a dead network or a stopped server
looks to the client; `restore()` lets connections through again. It runs its own event loop in a
thread, so synchronous code, tests on any loop and other processes can all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType


class OutageProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="outage-proxy", daemon=True)

    def start(self) -> OutageProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until `restore()`."""
        self._cut = True
        self._call(self._drop_all())

    def restore(self) -> None:
        self._cut = False

    def close(self) -> None:
        if self._server is not None:
            self._call(self._shut(self._server))
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> OutageProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _shut(self, server: asyncio.Server) -> None:
        server.close()
        await self._drop_all()

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close: what a vanished server gives
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )
        self._writers.difference_update((writer, upstream_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
