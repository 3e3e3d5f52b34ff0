"""A `kaika worker`'s own Prometheus metrics (served on WORKER_METRICS_PORT): the job deliveries it handled and
how they ended, how long they waited in the fleet's queue, how long they ran and each denoising step took.

The front ends count jobs as their members see them (`service.metrics`); a worker counts what ran on its GPU,
so a fleet is watched worker by worker without the bot. Declared at start for the worker's one model.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# How a delivery of a job ended on this worker: it finished, failed or was cancelled; it was lost to another
# delivery (its lease ran out), or its result was a duplicate of one stored first; or it was not run at all
# (the job had ended or another delivery held it).
OUTCOMES = ("finished", "failed", "cancelled", "lost", "duplicate", "skipped")

STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class WorkerMetrics:
    """The metrics of a worker serving `model` (MODEL's value), in a registry of their own."""

    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.model = model
        self.registry = registry if registry is not None else CollectorRegistry()
        self.jobs = Counter(
            "kaika_worker_jobs",
            "Job deliveries this worker handled, by how they ended",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.redeliveries = Counter(
            "kaika_worker_redeliveries",
            "Jobs this worker ran again after another worker lost them",
            ["model"],
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "kaika_worker_job_queue_seconds",
            "Seconds a job waited in the fleet (from the bot's submission) before this worker began it",
            ["model"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "kaika_worker_job_duration_seconds",
            "Seconds this worker computed a finished job's images",
            ["model"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "kaika_worker_step_duration_seconds",
            "Seconds between two denoising steps on this worker",
            ["model"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.busy = Gauge("kaika_worker_busy", "1 while this worker runs a job", registry=self.registry)
        self.model_loaded = Gauge(
            "kaika_worker_model_loaded",
            "1 once this worker's model is loaded and it takes jobs",
            ["model"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.jobs.labels(model, outcome)
        for metric in (self.redeliveries, self.queue_seconds, self.job_seconds, self.step_seconds):
            metric.labels(model)
        self.model_loaded.labels(model).set(0)

    def ended(self, outcome: str) -> None:
        self.jobs.labels(self.model, outcome).inc()
