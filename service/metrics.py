"""The job metrics every front end exposes at /metrics (Prometheus), measured where every job passes: the
job service.

A `JobMetrics` owns its registry, so two services in one process (and two tests) never share counters. Its
metrics are declared when it is made, with a zero for every status and kind of the models it is told of, so
/metrics lists them before the first job. A job's figures come from its `JobMeter`, which the job service
moves as the job is admitted, starts, steps and ends; the bot adds how long Discord waited for each
acknowledgement. A `kaika worker` has metrics of its own (`pipeline.executor.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from storage.records import JobKind, JobRecord, JobStatus

# The model label of jobs that ran on the default model (MODEL): they record no model name.
DEFAULT_MODEL = "default"

# Why a job failed: the generation failed (the executor said so), Kaika failed around it (an error in the
# service, logged), or its front end could not show it (Discord refused the acknowledgement).
FAILURE_REASONS = ("generation", "internal", "unacknowledged")

# Seconds: a step takes hundredths on a GPU and seconds on a CPU; a job waits seconds to many minutes.
STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Discord gives an interaction 3 seconds to be acknowledged.
ACKNOWLEDGEMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0)


def model_label(model: str | None) -> str:
    return model or DEFAULT_MODEL


class JobMetrics:
    """Kaika's job metrics in a registry of their own (`registry`, for `exposition`).

    `queue_depth` is read at each scrape (the executor's jobs waiting or running); `models` are the names of
    the models besides the default one, whose label sets are declared with zeros; `clock` measures durations.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        queue_depth: Callable[[], int] | None = None,
        models: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.clock = clock
        self.jobs = Counter(
            "kaika_jobs",
            "Jobs that reached each status (queued when admitted, then running, done, failed or cancelled)",
            ["status", "kind", "model"],
            registry=self.registry,
        )
        self.failures = Counter(
            "kaika_job_failures",
            "Failed jobs by reason: generation (the model or device failed), internal (Kaika failed around "
            "it, see the log), unacknowledged (its front end could not show it)",
            ["kind", "model", "reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "kaika_queue_depth", "Jobs waiting or running in the executor now", registry=self.registry
        )
        if queue_depth is not None:
            self.queue_depth.set_function(queue_depth)
        self.queue_seconds = Histogram(
            "kaika_job_queue_seconds",
            "Seconds from a job's admission to its start",
            ["model"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "kaika_job_duration_seconds",
            "Seconds from a job's admission to its images stored (done jobs)",
            ["kind", "model"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "kaika_step_duration_seconds",
            "Seconds between two denoising steps of a job, as the job service sees them",
            ["model"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.acknowledgement_seconds = Histogram(
            "kaika_acknowledgement_seconds",
            "Seconds from a Discord interaction's creation to Kaika's acknowledgement of it (Discord allows 3)",
            buckets=ACKNOWLEDGEMENT_BUCKETS,
            registry=self.registry,
        )
        for model in dict.fromkeys([DEFAULT_MODEL, *models]):
            self.declare(model)

    def declare(self, model: str) -> None:
        """List every series of `model` with zeros, before its first job."""
        for kind in JobKind:
            for status in JobStatus:
                self.jobs.labels(status, kind, model)
            for reason in FAILURE_REASONS:
                self.failures.labels(kind, model, reason)
            self.job_seconds.labels(kind, model)
        self.queue_seconds.labels(model)
        self.step_seconds.labels(model)

    def job(self, job: JobRecord, *, resumed: bool = False) -> JobMeter:
        """The meter of `job`; a `resumed` one (admitted by an earlier process) times no wait or duration,
        which began before this process."""
        return JobMeter(self, job.kind, model_label(job.model), resumed=resumed)

    def acknowledged(self, seconds: float) -> None:
        self.acknowledgement_seconds.observe(max(seconds, 0.0))  # clocks apart by a little: never negative


class JobMeter:
    """One job's way through the metrics: each status counted once, durations from this process's clock."""

    def __init__(self, metrics: JobMetrics, kind: JobKind, model: str, *, resumed: bool = False) -> None:
        self._metrics = metrics
        self.kind = kind
        self.model = model
        self._admitted_at = None if resumed else metrics.clock()
        self._started = False
        self._last_step_at: float | None = None
        self._ended = False

    def _count(self, status: JobStatus) -> None:
        self._metrics.jobs.labels(status, self.kind, self.model).inc()

    def admitted(self) -> None:
        self._count(JobStatus.QUEUED)

    def started(self) -> None:
        if self._started or self._ended:
            return
        self._started = True
        self._count(JobStatus.RUNNING)
        if self._admitted_at is not None:
            self._metrics.queue_seconds.labels(self.model).observe(self._metrics.clock() - self._admitted_at)

    def step(self) -> None:
        """A step ended; the time since the previous one is a step's duration (the first one also holds the
        model's start: it is not counted)."""
        self.started()
        now = self._metrics.clock()
        if self._last_step_at is not None:
            self._metrics.step_seconds.labels(self.model).observe(now - self._last_step_at)
        self._last_step_at = now

    def _end(self, status: JobStatus) -> bool:
        if self._ended:
            return False
        self._ended = True
        self._count(status)
        return True

    def done(self) -> None:
        self.started()
        if self._end(JobStatus.DONE) and self._admitted_at is not None:
            seconds = self._metrics.clock() - self._admitted_at
            self._metrics.job_seconds.labels(self.kind, self.model).observe(seconds)

    def failed(self, reason: str) -> None:
        if self._end(JobStatus.FAILED):
            self._metrics.failures.labels(self.kind, self.model, reason).inc()

    def cancelled(self) -> None:
        self._end(JobStatus.CANCELLED)


def exposition(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The body and content type of a /metrics answer: Prometheus's text format, or OpenMetrics when the
    scraper's Accept header asks for it."""
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
