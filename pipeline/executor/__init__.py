"""Executors run requests on a device and report progress; see `base.Executor`."""

from pipeline.executor.base import (
    Cancelled,
    Event,
    Executor,
    Failed,
    Finished,
    JobHandle,
    Queued,
    ReportsHealth,
    ResumableExecutor,
    Started,
    Step,
    UnknownJob,
)

__all__ = [
    "Cancelled",
    "Event",
    "Executor",
    "Failed",
    "Finished",
    "JobHandle",
    "Queued",
    "ReportsHealth",
    "ResumableExecutor",
    "Started",
    "Step",
    "UnknownJob",
]
