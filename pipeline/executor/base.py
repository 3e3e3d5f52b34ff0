"""The executor interface shared by the in-process executor and the Celery fleet.

A caller does `handle = await executor.submit(request, owner=...)`, then reads
`handle.events()` (queued → started → step … → finished | failed | cancelled) and/or awaits
`handle.result()`. Implementations deliver events on the caller's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pipeline.request import GenerationRequest, GenerationResult


@dataclass(frozen=True)
class Queued:
    position: int  # 1 = next to start


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Step:
    step: int  # 1-based
    total: int
    preview_png: bytes | None = None  # a small approximate image, every `preview_every` steps


@dataclass(frozen=True)
class Finished:
    result: GenerationResult


@dataclass(frozen=True)
class Failed:
    message: str


@dataclass(frozen=True)
class Cancelled:
    pass


Event = Queued | Started | Step | Finished | Failed | Cancelled


@runtime_checkable
class JobHandle(Protocol):
    job_id: str
    owner: str
    request: GenerationRequest

    def events(self) -> AsyncIterator[Event]:
        """Every event of the job from submission on; ends after the terminal event."""
        ...

    async def result(self) -> GenerationResult:
        """The result; raises `JobFailed` or `JobCancelled`."""
        ...

    async def cancel(self) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        ...


@runtime_checkable
class Executor(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, request: GenerationRequest, *, owner: str, job_id: str | None = None) -> JobHandle:
        """Queue a request; raises `QueueFull` (and `RequestError` for an invalid request)."""
        ...

    def queue_depth(self) -> int:
        """Jobs waiting or running now."""
        ...

    def native_size(self, model: str | None = None) -> int:
        """The side in pixels the model was trained at, used to turn --ar into a size."""
        ...
