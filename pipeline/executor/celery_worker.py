"""The GPU worker of the Celery fleet: one process per GPU, one model, one job at a time.

`run_worker` loads the model in the process that will run every job (Celery's solo pool: no fork, so
no CUDA context is ever inherited), announces the model, and consumes the model's queue. Each job
reports its steps to the job's Redis stream, checks the job's cancel flag between steps, and stores
its images in Redis once, however often the job is delivered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from pipeline.errors import JobCancelled, PipelineError
from pipeline.executor.celery_jobs import (
    BEGIN_SCRIPT,
    END_SCRIPT,
    FINISH_SCRIPT,
    FINISHED,
    PROGRESS_MAXLEN,
    RENEW_SCRIPT,
    STEP_SCRIPT,
    TASK_NAME,
    FleetConfig,
    JobKeys,
    dumps,
    make_celery_app,
    models_key,
    queue_for_model,
    request_from_payload,
)
from pipeline.executor.metrics import WorkerMetrics
from pipeline.images import encode_png

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """What `Engine.load` needs; the CLI fills it from `Settings`."""

    source: str
    device: str = "auto"
    dtype: str = "auto"
    loras: tuple[str, ...] = ()
    upscaler: str = ""
    config: str = ""  # MODEL_CONFIG: the local configuration of a single-file MODEL
    video: str = ""  # VIDEO_MODEL: the image-to-video model beside it (`pipeline.video`)


class WorkerStartError(Exception):
    """The worker cannot start; the message says which setting to check."""


class WorkerJobs:
    """The worker's side of a job's Redis records (synchronous: it runs in the job's thread)."""

    def __init__(self, client: redis.Redis, config: FleetConfig) -> None:
        self.redis = client
        self._config = config
        self._begin = client.register_script(BEGIN_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._step = client.register_script(STEP_SCRIPT)
        self._finish = client.register_script(FINISH_SCRIPT)
        self._end = client.register_script(END_SCRIPT)

    def _keys(self, job_id: str) -> JobKeys:
        return JobKeys(self._config.key_prefix, job_id)

    def _common(self, job_id: str) -> tuple[list[str], list[Any]]:
        keys = self._keys(job_id)
        return [keys.job, keys.events, keys.lease], [self._config.result_ttl, PROGRESS_MAXLEN]

    @property
    def _lease_ms(self) -> int:
        return self._config.lease_seconds * 1000

    def begin(self, job_id: str, worker: str) -> tuple[str, int, float]:
        """('run', attempt, seconds queued), or the reason not to run it ('missing', 'leased' or a final
        state). Running, the worker holds the job's lease from now on; `hold` keeps it."""
        keys, args = self._common(job_id)
        decision, attempt, queued = self._begin(
            keys=keys, args=[*args, self._config.max_attempts, worker, self._lease_ms]
        )
        return decision.decode(), int(attempt), float(queued)

    def hold(self, job_id: str, attempt: int, worker: str) -> Lease:
        """Renew the lease of delivery `attempt` in a thread of its own until `Lease.release`."""
        return Lease(self, job_id, attempt, worker)

    def renew(self, job_id: str, attempt: int, worker: str) -> bool:
        """Extend the lease; False when the job is no longer this delivery's (taken over, ended)."""
        keys = self._keys(job_id)
        return bool(self._renew(keys=[keys.job, keys.lease], args=[attempt, worker, self._lease_ms]))

    def step(self, job_id: str, attempt: int, step: int, total: int, preview_png: bytes | None) -> bool:
        """Report a step; False (nothing written) when the job is no longer this delivery's."""
        keys, args = self._common(job_id)
        return bool(self._step(keys=keys[:2], args=[*args, attempt, step, total, preview_png or b""]))

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.hexists(self._keys(job_id).job, "cancel"))

    def finish(self, job_id: str, attempt: int, result: dict[str, Any], pngs: list[bytes]) -> bool:
        """Store images and result; False when another delivery or a cancel ended the job first, or
        another delivery has begun it since."""
        keys, args = self._common(job_id)
        image_keys = [self._keys(job_id).image(i) for i in range(len(pngs))]
        return bool(self._finish(keys=[*keys, *image_keys], args=[*args, attempt, dumps(result), *pngs]))

    def stored_result(self, job_id: str) -> dict[str, Any]:
        return json.loads(self.redis.hget(self._keys(job_id).job, "result") or "{}")

    def end(self, job_id: str, attempt: int | None, state: str, message: str = "") -> bool:
        """End the job as `state` ('failed' or 'cancelled') if delivery `attempt` still owns it (None: any)."""
        keys, args = self._common(job_id)
        return bool(
            self._end(keys=keys, args=[*args, state, message, "0", "" if attempt is None else attempt])
        )


class Lease:
    """Delivery `attempt`'s hold on a running job: renewed every `lease_renew_seconds` by a daemon thread,
    so a worker that dies or hangs (its threads stopped with it) loses the job to another within about
    `lease_seconds`. `lost` is set once the job is no longer this delivery's; the job then stops."""

    def __init__(self, jobs: WorkerJobs, job_id: str, attempt: int, worker: str) -> None:
        self._jobs = jobs
        self.job_id = job_id
        self.attempt = attempt
        self.worker = worker
        self.lost = threading.Event()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{job_id}", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        interval = self._jobs._config.lease_renew_seconds
        while not self._released.wait(interval):
            try:
                if not self._jobs.renew(self.job_id, self.attempt, self.worker):
                    self.lost.set()  # the job stops at its next step
                    return
            except redis.RedisError as error:  # the lease may lapse; the job goes on, and may be taken over
                log.warning("Could not renew the lease of job %s: %s", self.job_id, error)

    def release(self) -> None:
        self._released.set()
        self._thread.join()


# A readiness check of Redis gives up after this many seconds (a cut network never answers).
HEALTH_TIMEOUT = 2.0


class WorkerRuntime:
    """Per-process state of a worker: the engine (loaded once), the Redis client and its metrics."""

    def __init__(
        self, config: FleetConfig, engine_options: EngineOptions, metrics: WorkerMetrics | None = None
    ) -> None:
        self.config = config
        self.engine_options = engine_options
        self.metrics = metrics or WorkerMetrics(engine_options.source or "demo")
        self._pid = 0
        self._engine: Any = None
        self._jobs: WorkerJobs | None = None

    def health(self) -> dict[str, str | None]:
        """Whether Redis answers and the model is loaded: part → why not, or None (for /readyz)."""
        client = redis.Redis.from_url(
            self.config.redis_url, socket_connect_timeout=HEALTH_TIMEOUT, socket_timeout=HEALTH_TIMEOUT
        )
        try:
            client.ping()
            redis_problem = None
        except redis.RedisError as error:
            where = client.get_connection_kwargs()
            redis_problem = (
                f"cannot reach Redis at {where.get('host')}:{where.get('port')} (REDIS_URL): {error}"
            )
        finally:
            client.close()
        model = None if self._engine is not None else "still loading; it takes no job before it is loaded."
        return {"redis": redis_problem, "model": model}

    def _ensure_process(self) -> None:
        # A forked child must never reuse its parent's engine or sockets; solo pools never fork.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._engine = None
            client = redis.Redis.from_url(
                self.config.redis_url, client_name=f"{self.config.key_prefix}-worker"
            )
            self._jobs = WorkerJobs(client, self.config)

    @property
    def jobs(self) -> WorkerJobs:
        self._ensure_process()
        assert self._jobs is not None
        return self._jobs

    def engine(self) -> Any:
        self._ensure_process()
        if self._engine is None:
            from pipeline.engine import Engine

            options = self.engine_options
            started = time.perf_counter()
            self._engine = Engine.load(
                options.source,
                device=options.device,
                dtype=options.dtype,
                loras=options.loras,
                upscaler=options.upscaler,
                config=options.config,
                video=options.video,
            )
            log.info("Loaded %s in %.1f s", self._engine.model_id, time.perf_counter() - started)
            self.metrics.model_loaded.labels(self.metrics.model).set(1)
        return self._engine

    def announce(self) -> None:
        """Tell the bots which model this queue serves and its family (sizes for --ar, modes, defaults)."""
        engine = self.engine()
        queue = queue_for_model(self.config.key_prefix, self.engine_options.source)
        info = {
            "model": self.engine_options.source,
            "model_id": engine.model_id,
            "family": engine.family.to_dict(),
        }
        self.jobs.redis.hset(models_key(self.config.key_prefix), queue, dumps(info))

    def generate(
        self, job_id: str, payload: dict[str, Any], preview_every: int, worker: str
    ) -> dict[str, Any]:
        jobs = self.jobs
        decision, attempt, queued_seconds = jobs.begin(job_id, worker)
        if decision == FINISHED:
            log.info("Job %s was already finished; not run again", job_id)
            self.metrics.ended("skipped")
            return jobs.stored_result(job_id)
        if decision != "run":
            log.info("Job %s not run: %s", job_id, decision)
            self.metrics.ended("skipped")
            return {"job_id": job_id, "state": decision}
        if attempt > 1:
            log.warning("Job %s redelivered (attempt %d)", job_id, attempt)
            self.metrics.redeliveries.labels(self.metrics.model).inc()
        self.metrics.queue_seconds.labels(self.metrics.model).observe(max(queued_seconds, 0.0))
        lease = jobs.hold(job_id, attempt, worker)
        try:
            with self.metrics.busy.track_inprogress():
                summary = self._run(job_id, payload, preview_every, worker, attempt, queued_seconds, lease)
        finally:
            lease.release()
        self.metrics.ended(summary["state"])
        return summary

    def _run(
        self,
        job_id: str,
        payload: dict[str, Any],
        preview_every: int,
        worker: str,
        attempt: int,
        queued_seconds: float,
        lease: Lease,
    ) -> dict[str, Any]:
        jobs = self.jobs
        request = request_from_payload(payload)
        engine = self.engine()
        lost = {"job_id": job_id, "state": "lost"}  # taken over by another delivery: it reports the job
        last_step: list[float] = []  # when the previous step ended; the first step also holds the start

        def on_step(step: int, total: int, previews: list[bytes | None]) -> None:
            now = time.perf_counter()
            if last_step:
                self.metrics.step_seconds.labels(self.metrics.model).observe(now - last_step[0])
            last_step[:] = [now]
            # One request per job: its preview is the first.
            if not jobs.step(job_id, attempt, step, total, previews[0]):
                lease.lost.set()

        def should_stop() -> bool:
            return lease.lost.is_set() or jobs.cancel_requested(job_id)

        started = time.perf_counter()
        try:
            (result,) = engine.run(
                [request], on_step=on_step, should_stop=should_stop, preview_every=preview_every
            )
        except JobCancelled:
            if lease.lost.is_set():
                log.warning("Job %s was taken over by another delivery; this one stops here", job_id)
                return lost
            jobs.end(job_id, attempt, "cancelled")
            return {"job_id": job_id, "state": "cancelled"}
        except PipelineError as error:
            jobs.end(job_id, attempt, "failed", str(error))
            return {"job_id": job_id, "state": "failed", "message": str(error)}
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # lost Redis mid-job: the task retries it (see create_worker_app)
        except Exception as error:
            # Anything else is a bug or a broken device; the user gets a short reason, the log the trace.
            log.exception("Job %s failed", job_id)
            message = f"The generation failed on a worker ({type(error).__name__}: {error})."
            jobs.end(job_id, attempt, "failed", message)
            return {"job_id": job_id, "state": "failed", "message": message}
        compute_seconds = time.perf_counter() - started
        self.metrics.job_seconds.labels(self.metrics.model).observe(compute_seconds)
        pngs = [encode_png(image) for image in result.images]
        keys = JobKeys(self.config.key_prefix, job_id)
        summary = {
            "job_id": job_id,
            "state": "finished",
            "images": [keys.image(i) for i in range(len(pngs))],
            "seeds": list(result.seeds),
            "model_id": result.model_id,
            "metadata": dict(result.metadata),
            "queued_seconds": queued_seconds,
            "compute_seconds": compute_seconds,
            "attempt": attempt,
            "worker": worker,
        }
        if not jobs.finish(job_id, attempt, summary, pngs):
            log.warning(
                "Job %s had ended or was taken over by another delivery; this result is dropped", job_id
            )
            return {"job_id": job_id, "state": "duplicate"}
        return summary


def create_worker_app(
    config: FleetConfig, engine_options: EngineOptions, metrics: WorkerMetrics | None = None
) -> tuple[Celery, WorkerRuntime]:
    app = make_celery_app(config)
    runtime = WorkerRuntime(config, engine_options, metrics)

    @app.task(
        name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=config.max_retries
    )
    def generate(task, job_id: str, payload: dict[str, Any], preview_every: int) -> dict[str, Any]:
        try:
            return runtime.generate(job_id, payload, preview_every, worker=task.request.hostname or "")
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # A Redis hiccup is worth another try, a few seconds later; a bad request or a model error is not.
            if task.request.retries < config.max_retries:
                raise task.retry(exc=error, countdown=2**task.request.retries) from error
            with contextlib.suppress(redis.RedisError):
                runtime.jobs.end(
                    job_id,
                    None,
                    "failed",
                    "A worker kept losing its connection to Redis; the job was given up.",
                )
            raise

    return app, runtime


def run_worker(
    config: FleetConfig,
    engine_options: EngineOptions,
    *,
    hostname: str = "",
    loglevel: str = "INFO",
    serve: Callable[[WorkerRuntime], Callable[[], None]] | None = None,
) -> None:
    """Load the model, then serve its queue until stopped (SIGTERM finishes the running job first).

    `serve(runtime)`, when given, starts serving the worker's metrics and health before the model loads
    (so a prober sees it alive, and not ready until it is loaded); what it returns stops that at the end.
    """
    app, runtime = create_worker_app(config, engine_options)
    try:
        runtime.jobs.redis.ping()  # before the minutes a model can take to load
    except redis.RedisError as error:
        where = runtime.jobs.redis.get_connection_kwargs()
        raise WorkerStartError(
            f"cannot reach Redis at {where.get('host')}:{where.get('port')} (REDIS_URL): {error}"
        ) from error
    stop_serving = serve(runtime) if serve is not None else None
    try:
        _serve_queue(app, runtime, config, engine_options, hostname, loglevel)
    finally:
        if stop_serving is not None:
            stop_serving()


def _serve_queue(
    app: Celery,
    runtime: WorkerRuntime,
    config: FleetConfig,
    engine_options: EngineOptions,
    hostname: str,
    loglevel: str,
) -> None:
    runtime.announce()  # loads the engine here, in the process that runs the jobs
    queue = queue_for_model(config.key_prefix, engine_options.source)
    name = hostname or f"kaika-{os.getpid()}@{socket.gethostname()}"
    log.info("Worker %s serving %s on queue %s", name, engine_options.source or "the demo model", queue)
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={queue}",
            f"--hostname={name}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
