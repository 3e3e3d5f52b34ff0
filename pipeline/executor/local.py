"""The in-process executor: one worker thread per device runs the engines on that device.

Jobs wait in the shared fair queue (`fair.FairQueue`): owners take turns instead of first come,
first served, so one user's burst does not hold everyone else back. A worker takes the next
job in that order, then adds compatible queued jobs to the same pipeline call up to `max_batch`
images. Workers sleep on a condition variable until there is work; events reach the submitting
event loop through `call_soon_threadsafe`. How many jobs may wait is the service's decision
(`service.admission`); the executor orders whatever it is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline.errors import JobCancelled, JobFailed, ModelLoadError, QueueFull
from pipeline.executor.base import Cancelled, Event, Failed, Finished, JobHandleBase, Queued, Started, Step
from pipeline.executor.fair import FairQueue
from pipeline.families import ModelFamily, check_request
from pipeline.models import ModelPool, memory_budget
from pipeline.request import GenerationRequest, GenerationResult, Limits, Timings, can_share_call

if TYPE_CHECKING:
    from pipeline.engine import Engine

log = logging.getLogger(__name__)


class _State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class LocalJobHandle(JobHandleBase):
    """A submitted job: its events, its result, and a way to cancel it. Lives on the submitting loop."""

    def __init__(self, executor: LocalExecutor, job_id: str, owner: str, request: GenerationRequest) -> None:
        super().__init__(job_id, owner, request)
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        # Worker-side state, guarded by the executor's lock.
        self.state = _State.QUEUED
        self.position = 0
        self.submitted_at = 0.0

    def _emit(self, event: Event) -> None:
        """Deliver `event` from any thread, in order, on the submitting loop."""
        try:
            self._loop.call_soon_threadsafe(self._event_log.append, event)
        except RuntimeError:
            log.debug("event for job %s dropped: its event loop is closed", self.job_id)

    async def cancel(self) -> bool:
        return self._executor._cancel(self)


class LocalExecutor:
    """Runs requests on engines in this process; see the module docstring for the scheduling rules."""

    def __init__(
        self,
        models: Mapping[str | None, Engine] | ModelPool,
        *,
        max_batch: int = 4,
        preview_every: int = 5,
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass
        clock: Callable[[], float] = time.monotonic,
        new_job_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._models = models if isinstance(models, ModelPool) else ModelPool.of_engines(models)
        self.max_batch = max_batch
        self.preview_every = preview_every
        self.limits = limits
        self._clock = clock
        self._new_job_id = new_job_id
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._waiting: FairQueue[LocalJobHandle] = FairQueue()
        self._running: set[LocalJobHandle] = set()
        self._threads: list[threading.Thread] = []
        self._closing = False

    @classmethod
    async def load(
        cls,
        models: Mapping[str | None, str],
        *,
        device: str = "auto",
        dtype: str = "auto",
        loras: Sequence[str] = (),
        upscaler: str = "",
        memory_gb: float = 0.0,
        config: str = "",
        video: str = "",
        **options: object,
    ) -> LocalExecutor:
        """Open the models (key None: the default model, loaded now; the others when first used, see
        `pipeline.models`) off the event loop, then build the executor. `video` (VIDEO_MODEL) animates the
        default model's images."""
        from pipeline.engine import Engine

        def load(name: str | None, source: str) -> Engine:
            default = name is None
            return Engine.load(
                source,
                device=device,
                dtype=dtype,
                loras=loras if default else (),
                upscaler=upscaler,
                config=config if default else "",  # MODEL_CONFIG is the configuration of MODEL
                video=video if default else "",
            )

        def open_pool() -> ModelPool:
            return ModelPool.open(models, load, budget=memory_budget(memory_gb, device))

        return cls(await asyncio.to_thread(open_pool), **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the Executor interface

    @property
    def model_names(self) -> list[str]:
        """Names `--model` accepts: each extra model's name, and the default model's id."""
        return self._models.names

    async def start(self) -> None:
        if self._threads:
            return
        for device, keys in self._models.devices().items():
            thread = threading.Thread(
                target=self._work_loop, args=(set(keys),), name=f"kaika-{device}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    async def close(self) -> None:
        """Stop the workers after their current batch; jobs still waiting are cancelled."""
        with self._lock:
            self._closing = True
            waiting = self._waiting.drain()
            for job in waiting:
                job.state = _State.DONE
            self._work.notify_all()
        for job in waiting:
            job._emit(Cancelled())
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        self._threads.clear()

    async def submit(
        self, request: GenerationRequest, *, owner: str, job_id: str | None = None, priority: int = 0
    ) -> LocalJobHandle:
        request.validate(self.limits)
        # A size or mode this model's family cannot make is refused now, before the model is even loaded.
        check_request(self._models.family(request.model), self._models.model_id(request.model), request)
        handle = LocalJobHandle(self, job_id or self._new_job_id(), owner, request)
        with self._lock:
            if self._closing:
                raise QueueFull("The generator is shutting down; try again in a minute.")
            handle.submitted_at = self._clock()
            self._waiting.push(handle, priority=priority)
            moved = self._renumber()
            self._work.notify_all()
        for job, position in moved:
            job._emit(Queued(position))
        return handle

    def queue_depth(self) -> int:
        with self._lock:
            return self._depth()

    async def health(self) -> dict[str, str | None]:
        """Whether the device threads that run the jobs are there (see `ReportsHealth`)."""
        with self._lock:
            closing = self._closing
        stopped = [thread.name for thread in self._threads if not thread.is_alive()]
        if closing:
            problem: str | None = "it is shutting down."
        elif not self._threads:
            problem = "it has not been started."
        elif stopped:
            problem = f"its device thread {', '.join(stopped)} has stopped; see the log."
        else:
            problem = None
        return {"executor": problem}

    def family(self, model: str | None = None) -> ModelFamily:
        return self._models.family(model)

    # ------------------------------------------------------------------ scheduling (lock held)

    def _depth(self) -> int:
        return len(self._waiting) + len(self._running)

    def _in_service(self, owner: str) -> int:
        return sum(job.owner == owner for job in self._running)

    def _renumber(self) -> list[tuple[LocalJobHandle, int]]:
        """Give each waiting job its position; return those whose position changed."""
        moved = []
        for position, job in enumerate(self._waiting.order(self._in_service), start=1):
            if job.position != position:
                job.position = position
                moved.append((job, position))
        return moved

    def _take_batch(self, keys: set[str | None]) -> tuple[str | None, list[LocalJobHandle]] | None:
        """The next job for one of the models `keys` in fair order, plus compatible waiting jobs up to
        `max_batch` images; with the key of the model they need."""
        order = self._waiting.order(self._in_service)
        lead = next((job for job in order if self._models.key(job.request.model) in keys), None)
        if lead is None:
            return None
        key = self._models.key(lead.request.model)
        batch, images = [lead], lead.request.num_images
        for job in order:
            if job is lead or images + job.request.num_images > self.max_batch:
                continue
            if self._models.key(job.request.model) == key and can_share_call(lead.request, job.request):
                batch.append(job)
                images += job.request.num_images
        for job in batch:
            self._waiting.take(job)
            job.state = _State.RUNNING
            self._running.add(job)
        return key, batch

    # ------------------------------------------------------------------ the worker thread

    def _work_loop(self, keys: set[str | None]) -> None:
        while True:
            with self._work:
                taken = self._take_batch(keys)
                while taken is None and not self._closing:
                    self._work.wait()
                    taken = self._take_batch(keys)
                if taken is None:
                    return
                started_at = self._clock()
                moved = self._renumber()
            for job, position in moved:
                job._emit(Queued(position))
            key, batch = taken
            for job in batch:
                job._emit(Started())
            self._run_batch(key, batch, started_at)

    def _run_batch(self, key: str | None, batch: list[LocalJobHandle], started_at: float) -> None:
        def on_step(step: int, total: int, previews: list[bytes | None]) -> None:
            for job, preview in zip(batch, previews, strict=True):
                job._emit(Step(step, total, preview))

        def should_stop() -> bool:
            return all(job.state is _State.DONE for job in batch)

        try:
            outcomes = self._models.engine(key).run_outcomes(
                [job.request for job in batch],
                on_step=on_step,
                should_stop=should_stop,
                preview_every=self.preview_every,
                max_batch=self.max_batch,
            )
        except JobCancelled:
            outcomes = [JobCancelled("The job was cancelled.")] * len(batch)
        except ModelLoadError as error:  # a MODELS entry loaded on first use; the others keep serving
            log.error("%s", error)
            outcomes = [JobFailed(str(error))] * len(batch)
        except Exception as error:  # the worker keeps serving whatever one batch did
            log.exception("generation failed for jobs %s", [job.job_id for job in batch])
            outcomes = [JobFailed(f"Generation failed: {error}")] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            with self._lock:
                self._running.discard(job)
                if job.state is _State.DONE:
                    continue  # cancelled while running; its Cancelled event is already out
                job.state = _State.DONE
            if isinstance(outcome, GenerationResult):
                outcome = dataclasses.replace(
                    outcome,
                    timings=Timings(started_at - job.submitted_at, outcome.timings.compute_seconds),
                    metadata={**outcome.metadata, "job_id": job.job_id},
                )
                job._emit(Finished(outcome))
            elif isinstance(outcome, JobCancelled):
                job._emit(Cancelled())
            else:
                job._emit(Failed(str(outcome)))
        with self._lock:
            self._work.notify_all()  # a finished job may free a per-user slot another worker waits on

    def _cancel(self, job: LocalJobHandle) -> bool:
        with self._lock:
            if job.state is _State.DONE:
                return False
            if job.state is _State.QUEUED:
                self._waiting.remove(job)
            else:
                self._running.discard(job)
            job.state = _State.DONE
            moved = self._renumber()
        job._emit(Cancelled())  # queued behind events the worker already sent, so the order holds
        for other, position in moved:
            other._emit(Queued(position))
        return True
