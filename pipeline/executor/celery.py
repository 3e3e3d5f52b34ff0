"""The bot's side of the Celery fleet: the same async `Executor` interface as the local executor,
with the work done by `kaika worker` processes on other GPUs or machines.

Fairness stays here: jobs wait in the shared fair queue (`fair.FairQueue`) in this process and only
`in_flight` of them at a time are handed to Celery, so one user's burst never fills the workers'
queue; how many jobs may wait at all is the service's decision (`service.admission`). Every job is
recorded in Redis before it is queued, so a restarted bot picks its jobs up
again with `attach` and reads their progress stream from the start or from
the last event it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.errors import PipelineError
from pipeline.executor.base import (
    Cancelled,
    Event,
    Failed,
    Finished,
    JobHandleBase,
    Queued,
    Started,
    Step,
    UnknownJob,
    WorkerInfo,
)
from pipeline.executor.celery_jobs import (
    CREATE_SCRIPT,
    END_SCRIPT,
    PENDING,
    PROGRESS_MAXLEN,
    REAP_SCRIPT,
    RELEASE_SCRIPT,
    TASK_NAME,
    TERMINAL_STATES,
    FleetConfig,
    JobKeys,
    celery_priority,
    dumps,
    make_celery_app,
    models_key,
    queue_for_model,
    request_from_payload,
    request_to_payload,
)
from pipeline.executor.fair import FairQueue
from pipeline.families import UNKNOWN_FAMILY, ModelFamily
from pipeline.images import decode_image
from pipeline.request import GenerationRequest, GenerationResult, Limits, Timings

log = logging.getLogger(__name__)

_READ_BLOCK_MS = 2000  # also about the longest `close` waits for a reader to stop
_MODELS_REFRESH_SECONDS = 30.0
WORKERS_REPLY_SECONDS = 1.0  # how long the dashboard waits for workers to say what they serve
READ_IMAGES_TTL = 600  # seconds a job's images stay in Redis once a bot has read them


class FleetUnavailable(PipelineError):
    """Redis, through which jobs reach the workers, cannot be reached; the message is for the user."""


class CeleryJobHandle(JobHandleBase):
    """A job on the fleet. Events are kept, so every `events()` reader sees them all from the start."""

    def __init__(self, job_id: str, owner: str, request: GenerationRequest, tier: int) -> None:
        super().__init__(job_id, owner, request)
        self.tier = tier
        # The last stream entry read (events up to it are in `events()`); `attach(job_id, after=...)`
        # in a restarted bot resumes there.
        self.last_event_id = "0-0"
        self._last_queued: Queued | None = None
        self._executor: CeleryExecutor | None = None
        self.released = False
        self.started = False

    def _push(self, event: Event) -> None:
        if isinstance(event, Queued):
            if self.started or event == self._last_queued:
                return
            self._last_queued = event
        if isinstance(event, Started):
            if self.started:
                return  # a redelivered job starts again; the caller has already been told
            self.started = True
        if self._event_log.append(event) and self.done and self._executor is not None:
            asyncio.get_running_loop().call_soon(self._executor._ended, self)

    async def cancel(self) -> bool:
        if self.done or self._executor is None:
            return False
        return await self._executor._cancel(self)


class CeleryExecutor:
    """Submits jobs to `kaika worker` processes through Celery on Redis.

    `in_flight` is how many jobs are handed to the workers at once (a little more than the number
    of workers keeps them busy); the rest wait here, fairly ordered. `submit(..., priority=tier)`
    lets a favoured tier (1-9) overtake tier 0, both here and in the workers' queue.
    """

    def __init__(
        self,
        config: FleetConfig,
        *,
        default_model: str = "",
        model_sources: dict[str, str] | None = None,
        in_flight: int = 8,
        preview_every: int = 5,
        limits: Limits | None = None,
        id_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.config = config
        self.default_model = default_model
        self.model_sources = dict(model_sources or {})  # --model names (MODELS name=source) → MODEL values
        self.in_flight = in_flight
        self.preview_every = preview_every
        self.limits = limits or Limits()
        self._new_id = id_factory
        self._handles: dict[str, CeleryJobHandle] = {}
        self._waiting: FairQueue[CeleryJobHandle] = FairQueue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._models: dict[str, dict[str, Any]] = {}
        self._redis: aioredis.Redis | None = None
        self._closing = False
        self._app = make_celery_app(config, results=False)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        # Named, so an operator can tell the bot's connections from the workers' (CLIENT LIST).
        self._redis = aioredis.Redis.from_url(
            self.config.redis_url, client_name=f"{self.config.key_prefix}-bot"
        )
        self._create = self._redis.register_script(CREATE_SCRIPT)
        self._release_script = self._redis.register_script(RELEASE_SCRIPT)
        self._end = self._redis.register_script(END_SCRIPT)
        self._reap = self._redis.register_script(REAP_SCRIPT)
        try:
            await self._refresh_models()
        except (RedisConnectionError, RedisTimeoutError) as error:
            where = self._redis.connection_pool.connection_kwargs
            await self._redis.aclose()
            self._redis = None
            raise FleetUnavailable(
                f"Cannot reach Redis at {where.get('host')}:{where.get('port')} (REDIS_URL): {error}"
            ) from error
        self._spawn(self._keep_models_fresh())
        self._spawn(self._reap_abandoned())

    async def close(self) -> None:
        """Stop reading; jobs stay recorded in Redis for the next `attach`."""
        self._closing = True  # redis-py may turn a cancelled read into a connection error: stop looping
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        await asyncio.to_thread(self._app.close)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("CeleryExecutor.start() has not been awaited")
        return self._redis

    # --- the Executor interface ------------------------------------------------------------------

    async def submit(
        self, request: GenerationRequest, *, owner: str, job_id: str | None = None, priority: int = 0
    ) -> CeleryJobHandle:
        """Record the job in Redis, then queue it; a job id already recorded is attached instead."""
        request.validate(self.limits)
        job_id = job_id or self._new_id()
        if job_id in self._handles:
            return self._handles[job_id]
        handle = self._adopt(job_id, owner, request, priority)  # counted from now on, before any await
        keys = JobKeys(self.config.key_prefix, job_id)
        try:
            created = await self._create(
                keys=[keys.job, keys.events],
                args=[
                    self.config.result_ttl,
                    PROGRESS_MAXLEN,
                    owner,
                    dumps(request_to_payload(request)),
                    priority,
                ],
            )
        except BaseException as error:
            del self._handles[job_id]
            if isinstance(error, RedisConnectionError | RedisTimeoutError):
                log.error("Redis unreachable; job %s not queued: %s", job_id, error)
                raise FleetUnavailable(
                    "The image workers cannot be reached right now; try again in a minute."
                ) from error
            raise
        if not created:
            del self._handles[job_id]
            return await self.attach(job_id)
        self._wait(handle)
        return handle

    async def attach(self, job_id: str, *, after: str = "0-0") -> CeleryJobHandle:
        """The handle of a recorded job, e.g. after a restart: its events from stream id `after` on.

        A job that was still waiting in a previous bot's fair queue waits here again.
        """
        if job_id in self._handles:
            return self._handles[job_id]
        record = await self.redis.hgetall(JobKeys(self.config.key_prefix, job_id).job)
        if not record:
            raise UnknownJob(f"No job {job_id} is recorded in Redis (never submitted, or expired).")
        if job_id in self._handles:
            return self._handles[job_id]  # attached meanwhile by another caller
        owner = record[b"owner"].decode()
        request = request_from_payload(json.loads(record[b"request"]))
        handle = self._adopt(job_id, owner, request, int(record.get(b"priority", b"0")))
        state = record[b"state"].decode()
        if state == PENDING:
            self._wait(handle)
        else:
            handle.released = state not in TERMINAL_STATES
            handle.last_event_id = after
            self._spawn(self._read(handle))
        return handle

    def queue_depth(self) -> int:
        return sum(1 for handle in self._handles.values() if not handle.done)

    async def health(self) -> dict[str, str | None]:
        """Redis answers a ping, and a worker has announced its model (see `ReportsHealth`)."""
        if self._redis is None:
            return {
                "redis": "not connected: the executor has not been started or is closed.",
                "executor": None,
            }
        try:
            await self._redis.ping()
            redis_problem = None
        except RedisError as error:
            where = self._redis.connection_pool.connection_kwargs
            redis_problem = (
                f"cannot reach Redis at {where.get('host')}:{where.get('port')} (REDIS_URL): {error}"
            )
        workers = None if self._models else "no `kaika worker` has announced a model in Redis yet."
        return {"redis": redis_problem, "executor": workers}

    def family(self, model: str | None = None) -> ModelFamily:
        """The family the workers serving `model` announced; UNKNOWN_FAMILY until one has."""
        info = self._models.get(self._queue(model))
        if info is None:
            return UNKNOWN_FAMILY
        if "family" not in info:  # announced by a worker that describes only its size
            return dataclasses.replace(UNKNOWN_FAMILY, native_size=int(info["native_size"]))
        return ModelFamily.from_dict(info["family"])

    @property
    def model_names(self) -> list[str]:
        """Names `--model` accepts: the id of each model a worker has announced (refreshed every 30 s), and
        the MODELS names of announced models."""
        announced = {info["model"] for info in self._models.values()}
        names = {info["model_id"] for info in self._models.values()}
        return sorted(names | {name for name, source in self.model_sources.items() if source in announced})

    # --- fair release ------------------------------------------------------------------------------

    def _adopt(self, job_id: str, owner: str, request: GenerationRequest, tier: int) -> CeleryJobHandle:
        existing = self._handles.get(job_id)
        if existing is not None:
            return existing
        handle = CeleryJobHandle(job_id, owner, request, tier)
        handle._executor = self
        self._handles[job_id] = handle
        return handle

    def _wait(self, handle: CeleryJobHandle) -> None:
        self._waiting.push(handle, priority=handle.tier)
        self._dispatch()

    def _queue(self, model: str | None) -> str:
        """The queue of the workers that serve `model`: a MODELS name, a MODEL value, or a served model's id."""
        source = self.model_sources.get(model, model) if model else self.default_model
        for info in self._models.values():
            if source == info["model_id"]:
                source = info["model"]
                break
        return queue_for_model(self.config.key_prefix, source)

    def _dispatch(self) -> None:
        """Hand waiting jobs to the workers while fewer than `in_flight` are there, then renumber."""
        released = sum(1 for h in self._handles.values() if h.released and not h.done)
        while released < self.in_flight:
            handle = self._waiting.take_next(self._on_workers)
            if handle is None:
                break
            handle.released = True
            released += 1
            self._spawn(self._release(handle))
        ahead = [h for h in self._handles.values() if h.released and not h.started and not h.done]
        waiting = self._waiting.order(self._on_workers)
        for position, handle in enumerate([*ahead, *waiting], start=1):
            handle._push(Queued(position))

    def _on_workers(self, owner: str) -> int:
        return sum(1 for h in self._handles.values() if h.owner == owner and h.released and not h.done)

    def _ended(self, handle: CeleryJobHandle) -> None:
        self._waiting.remove(handle)
        if self._handles.get(handle.job_id) is handle:
            del self._handles[handle.job_id]  # its callers keep the handle; the executor needs it no more
        self._dispatch()

    async def _release(self, handle: CeleryJobHandle) -> None:
        keys = JobKeys(self.config.key_prefix, handle.job_id)
        self._spawn(self._read(handle))  # reading first: a fast worker may start before send_task returns
        try:
            await self._send(handle)
            await self._release_script(
                keys=[keys.job, keys.events], args=[self.config.result_ttl, PROGRESS_MAXLEN]
            )
        except Exception:  # the broker is unreachable: the job cannot run
            log.exception("Could not queue job %s", handle.job_id)
            message = "The job could not be sent to the workers; try again in a minute."
            with contextlib.suppress(Exception):  # recorded as failed too, so no restart runs it later
                await self._end(
                    keys=[keys.job, keys.events, keys.lease],
                    args=[self.config.result_ttl, PROGRESS_MAXLEN, "failed", message, "1", ""],
                )
            handle._push(Failed(message))

    async def _send(self, handle: CeleryJobHandle) -> None:
        """Put the job on its model's queue (again, for a job taken back from a lost worker)."""
        await asyncio.to_thread(
            self._app.send_task,
            TASK_NAME,
            args=(handle.job_id, request_to_payload(handle.request), self.preview_every),
            task_id=handle.job_id,
            queue=self._queue(handle.request.model),
            priority=celery_priority(handle.tier),
        )

    # --- lost workers ------------------------------------------------------------------------------

    async def _reap_abandoned(self) -> None:
        """Every `lease_renew_seconds`, queue again each job of ours whose worker stopped renewing its lease
        (killed, hung, cut off), so another worker has it within about `lease_seconds` of the loss, however
        long jobs run. The lost delivery's own message stays with the broker; should it come back (after
        CELERY_VISIBILITY_TIMEOUT), its worker finds the job ended or held and does nothing."""
        unsent: set[CeleryJobHandle] = set()  # taken back, but the broker refused the new message
        while True:
            await asyncio.sleep(self.config.lease_renew_seconds)
            for handle in [h for h in self._handles.values() if h.released and not h.done]:
                keys = JobKeys(self.config.key_prefix, handle.job_id)
                try:
                    if handle in unsent or await self._reap(
                        keys=[keys.job, keys.events, keys.lease], args=[self.config.result_ttl]
                    ):
                        log.warning("Job %s lost its worker (lease expired); queued again", handle.job_id)
                        unsent.add(handle)
                        await self._send(handle)
                        unsent.discard(handle)
                except Exception as error:  # Redis or the broker away: the next round tries again
                    log.warning("Could not queue lost job %s again: %s", handle.job_id, error)
            unsent = {handle for handle in unsent if not handle.done}

    # --- reading progress ------------------------------------------------------------------------------

    async def _read(self, handle: CeleryJobHandle) -> None:
        keys = JobKeys(self.config.key_prefix, handle.job_id)
        while not handle.done and not self._closing:
            try:
                reply = await self.redis.xread(
                    {keys.events: handle.last_event_id}, count=50, block=_READ_BLOCK_MS
                )
                if not reply and not await self.redis.exists(keys.job):
                    handle._push(Failed("The job's record expired before it finished."))
                    return
            except (RedisConnectionError, RedisTimeoutError):
                if self._closing:
                    return
                log.warning("Lost Redis while reading job %s; retrying", handle.job_id)
                await asyncio.sleep(1)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    handle.last_event_id = entry_id.decode()
                    await self._deliver(handle, {k.decode(): v for k, v in fields.items()})

    async def _deliver(self, handle: CeleryJobHandle, fields: dict[str, bytes]) -> None:
        kind = fields["type"].decode()
        if kind == "started":
            handle._push(Started())
            self._dispatch()
            return
        if kind == "step":
            handle._push(Step(int(fields["step"]), int(fields["total"]), fields.get("preview")))
            return
        outcome: Event
        if kind == "finished":
            summary = json.loads(fields["result"])
            result = await self._load_result(summary)
            outcome = (
                Finished(result)
                if result is not None
                else Failed("The job's images expired before they were read.")
            )
            # The bot keeps the images now; a short grace covers a crash before it has stored them.
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in summary["images"]:
                    pipe.expire(key, READ_IMAGES_TTL, lt=True)
                await pipe.execute()
        elif kind == "failed":
            outcome = Failed(fields["message"].decode())
        else:
            outcome = Cancelled()
        handle._push(outcome)

    async def _load_result(self, summary: dict[str, Any]) -> GenerationResult | None:
        pngs = await self.redis.mget(summary["images"]) if summary["images"] else []
        if any(png is None for png in pngs):
            return None
        images = await asyncio.to_thread(lambda: [decode_image(png) for png in pngs])
        return GenerationResult(
            images=images,
            seeds=list(summary["seeds"]),
            timings=Timings(summary["queued_seconds"], summary["compute_seconds"]),
            model_id=summary["model_id"],
            metadata=dict(summary["metadata"]),
        )

    # --- cancel -----------------------------------------------------------------------------------

    async def _cancel(self, handle: CeleryJobHandle) -> bool:
        if self._waiting.remove(handle):
            keys = JobKeys(self.config.key_prefix, handle.job_id)
            await self._end(
                keys=[keys.job, keys.events, keys.lease],
                args=[self.config.result_ttl, PROGRESS_MAXLEN, "cancelled", "", "1", ""],
            )
            handle._push(Cancelled())
            return True
        keys = JobKeys(self.config.key_prefix, handle.job_id)
        state = await self.redis.hget(keys.job, "state")
        if state is None or state.decode() in TERMINAL_STATES:
            return False
        # The flag stops a running job at its next step; revoke drops a queued one from the workers;
        # ending it here covers a job no worker has taken yet (its stream then says cancelled).
        await self.redis.hset(keys.job, "cancel", "1")
        await asyncio.to_thread(self._app.control.revoke, handle.job_id)
        await self._end(
            keys=[keys.job, keys.events, keys.lease],
            args=[self.config.result_ttl, PROGRESS_MAXLEN, "cancelled", "", "1", ""],
        )
        return True

    async def workers(self) -> list[WorkerInfo]:
        """The workers answering Celery's broadcast within WORKERS_REPLY_SECONDS, by node name, with the model
        of each queue they consume (its id once announced, else the queue's name)."""

        def ask() -> dict[str, Any]:
            return self._app.control.inspect(timeout=WORKERS_REPLY_SECONDS).active_queues() or {}

        try:
            answers = await asyncio.to_thread(ask)
        except (OSError, RedisError) as error:
            log.warning("Could not ask the fleet's workers for their queues: %s", error)
            return []
        workers = []
        for node, queues in sorted(answers.items()):
            names = {queue.get("name", "") for queue in queues or []}
            models = {
                self._models[name]["model_id"] if name in self._models else name for name in names if name
            }
            workers.append(WorkerInfo(node, tuple(sorted(models))))
        return workers

    # --- models the workers serve ------------------------------------------------------------------

    async def _refresh_models(self) -> None:
        entries = await self.redis.hgetall(models_key(self.config.key_prefix))
        self._models = {queue.decode(): json.loads(info) for queue, info in entries.items()}

    async def _keep_models_fresh(self) -> None:
        while True:
            await asyncio.sleep(_MODELS_REFRESH_SECONDS)
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                await self._refresh_models()
