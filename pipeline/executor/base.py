"""The executor interface shared by the in-process executor and the Celery fleet.

A caller does `handle = await executor.submit(request, owner=...)`, then reads
`handle.events()` (queued → started → step … → finished | failed | cancelled) and/or awaits
`handle.result()`. Implementations deliver events on the caller's event loop.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pipeline.errors import JobCancelled, JobFailed
from pipeline.families import ModelFamily
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
TERMINAL_EVENTS = (Finished, Failed, Cancelled)


class EventLog:
    """A job's events kept on one event loop: every `events()` reader sees them all from the start.

    Create and use it on the job's loop (other threads go through `loop.call_soon_threadsafe(log.append, e)`).
    The terminal event settles `result()`; nothing is appended after it.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._history: list[Event] = []
        self._grew: asyncio.Future[None] = loop.create_future()
        self._outcome: asyncio.Future[GenerationResult] = loop.create_future()

    @property
    def done(self) -> bool:
        return self._outcome.done()

    @property
    def history(self) -> list[Event]:
        return list(self._history)

    def append(self, event: Event) -> bool:
        """Add `event`; False (and nothing added) once the job has ended."""
        if self.done:
            return False
        self._history.append(event)
        if isinstance(event, Finished):
            self._outcome.set_result(event.result)
        elif isinstance(event, Failed | Cancelled):
            error = (
                JobFailed(event.message)
                if isinstance(event, Failed)
                else JobCancelled("The job was cancelled.")
            )
            self._outcome.set_exception(error)
            self._outcome.exception()  # marks it retrieved: a caller reading only events() is not an error
        self._grew.set_result(None)
        self._grew = asyncio.get_running_loop().create_future()
        return True

    async def events(self) -> AsyncIterator[Event]:
        index = 0
        while True:
            while index < len(self._history):
                event = self._history[index]
                index += 1
                yield event
                if isinstance(event, TERMINAL_EVENTS):
                    return
            await asyncio.shield(self._grew)

    async def result(self) -> GenerationResult:
        return await asyncio.shield(self._outcome)


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


class UnknownJob(LookupError):
    """`attach` was given a job id the executor has no record of (never submitted, or expired)."""


class JobHandleBase(ABC):
    """What the executors' job handles share: who and what the job is, and its `EventLog`.

    Create it on the job's event loop; the executor appends the job's events to `_event_log`.
    """

    def __init__(self, job_id: str, owner: str, request: GenerationRequest) -> None:
        self.job_id = job_id
        self.owner = owner
        self.request = request
        self._event_log = EventLog()

    @property
    def done(self) -> bool:
        """Whether the job has ended: its terminal event is in the log."""
        return self._event_log.done

    def events(self) -> AsyncIterator[Event]:
        return self._event_log.events()

    async def result(self) -> GenerationResult:
        return await self._event_log.result()

    @abstractmethod
    async def cancel(self) -> bool: ...


@runtime_checkable
class Executor(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(
        self, request: GenerationRequest, *, owner: str, job_id: str | None = None, priority: int = 0
    ) -> JobHandle:
        """Queue a request; a higher `priority` tier (`FAST_TIER` over `RELAX_TIER`) starts before every lower
        one. Raises `QueueFull` (and `RequestError` for an invalid request)."""
        ...

    def queue_depth(self) -> int:
        """Jobs waiting or running now."""
        ...

    def family(self, model: str | None = None) -> ModelFamily:
        """What the model (None: the default one) is: native size, size multiple, modes, defaults."""
        ...

    @property
    def model_names(self) -> list[str]:
        """The names `--model` accepts (for `parse_prompt(models=...)`)."""
        ...


@runtime_checkable
class ReportsHealth(Protocol):
    """An executor that can say whether it can run jobs now (for a front end's /readyz)."""

    async def health(self) -> dict[str, str | None]:
        """Each part the executor depends on ("executor"; "redis" for the fleet) → why it cannot work now,
        or None when it can."""
        ...


@dataclass(frozen=True)
class WorkerInfo:
    """One worker of a fleet as it answers: its name (Celery's node name) and the models it serves."""

    name: str
    models: tuple[str, ...]


@runtime_checkable
class ReportsWorkers(Protocol):
    """An executor whose jobs run on separate workers (the Celery fleet), which it can list."""

    async def workers(self) -> list[WorkerInfo]:
        """The workers answering now, by name; [] when none answers (or the broker cannot be reached)."""
        ...


@runtime_checkable
class ResumableExecutor(Executor, Protocol):
    """An executor whose jobs outlive the process that submitted them (the Celery fleet's do), so a
    restarted front end picks them up again by id. Ask `isinstance(executor, ResumableExecutor)`."""

    async def attach(self, job_id: str) -> JobHandle:
        """The handle of a job submitted earlier, perhaps by another process; raises `UnknownJob`."""
        ...
