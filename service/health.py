"""Whether a running bot or worker is healthy, for `kaika healthcheck` (Docker's HEALTHCHECK), and whether a
front end is ready to take jobs, for /readyz (`Readiness`, `service_readiness`).

The bot touches a heartbeat file in DATA_DIR every HEARTBEAT_EVERY seconds while it is connected to
Discord; it is healthy while the file is younger than HEARTBEAT_STALE seconds.

A worker (`kaika worker`) keeps a status file in the temporary folder: its Celery node name, and since
when it runs a job. It is healthy when it answers a Celery ping through REDIS_URL, or when it is busy
with a job younger than CELERY_VISIBILITY_TIMEOUT: a worker runs one job at a time in its only thread
(Celery's solo pool), so it cannot answer a ping before the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.executor.base import ReportsHealth
from storage.errors import StorageError

if TYPE_CHECKING:
    from service.wiring import Services

HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_EVERY = 5.0
HEARTBEAT_STALE = 30.0
PING_TIMEOUT = 5.0


# A readiness check that takes longer than this counts as failed: /readyz must answer a prober in time.
READY_TIMEOUT = 5.0


@dataclass(frozen=True)
class Readiness:
    """Whether each part a process needs works now: part name → why it does not, or None when it does."""

    problems: Mapping[str, str | None]

    @property
    def ready(self) -> bool:
        return all(problem is None for problem in self.problems.values())

    @property
    def failing(self) -> list[str]:
        return [part for part, problem in self.problems.items() if problem is not None]

    @property
    def status(self) -> int:
        """The HTTP status of /readyz: 200 when ready, 503 naming the failing parts otherwise."""
        return 200 if self.ready else 503

    def text(self) -> str:
        """The body of /readyz: "ready" or "not ready: <parts>", then a line per part."""
        head = "ready" if self.ready else f"not ready: {', '.join(self.failing)}"
        lines = [f"{part}: {problem or 'ok'}" for part, problem in self.problems.items()]
        return "\n".join([head, *lines]) + "\n"


async def _within(part: str, check: Any) -> dict[str, str | None]:
    try:
        return await asyncio.wait_for(check, READY_TIMEOUT)
    except TimeoutError:
        return {part: f"no answer within {READY_TIMEOUT:g} s."}


async def _database(services: Services) -> dict[str, str | None]:
    try:
        await services.storage.ping()
    except StorageError as error:
        cause = error.__cause__ or error
        reason = (str(cause).strip().splitlines() or [""])[0] or type(cause).__name__
        return {"database": f"cannot be reached ({reason}); check DATABASE_URL and that the database runs."}
    return {"database": None}


async def service_readiness(services: Services) -> Readiness:
    """Whether the database answers and the executor can run jobs (and, for the fleet, Redis answers)."""
    problems = await _within("database", _database(services))
    executor = services.executor
    if isinstance(executor, ReportsHealth):
        problems.update(await _within("executor", executor.health()))
    else:
        problems["executor"] = None
    return Readiness(problems)


def heartbeat_path(data_dir: Path) -> Path:
    return data_dir / HEARTBEAT_FILE


def bot_problem(data_dir: Path, *, now: float | None = None) -> str | None:
    """Why the bot using `data_dir` is not healthy, or None when its heartbeat is fresh."""
    path = heartbeat_path(data_dir)
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"no bot is running on DATA_DIR={data_dir} (no {path})."
    if age > HEARTBEAT_STALE:
        return (
            f"the bot on DATA_DIR={data_dir} last reported {age:.0f} s ago "
            f"(more than {HEARTBEAT_STALE:.0f} s): it is stuck or not connected to Discord."
        )
    return None


# ---- workers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerStatus:
    """What one `kaika worker` process says of itself in its status file."""

    pid: int
    fleet: str  # the fleet's CELERY_KEY_PREFIX: deployments sharing a machine do not mix
    node: str
    busy_since: float | None  # wall-clock time its current job began; None while it waits for one


def _status_folder() -> Path:
    return Path(tempfile.gettempdir())


def _status_path(pid: int) -> Path:
    return _status_folder() / f"kaika-worker-{pid}.json"


def write_worker_status(fleet: str, node: str, busy_since: float | None) -> None:
    """Record this process's worker status: its fleet, Celery node name and since when it runs a job."""
    path = _status_path(os.getpid())
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"fleet": fleet, "node": node, "busy_since": busy_since}))
    os.replace(partial, path)  # a reader never sees half a file


def track_worker_status(fleet: str) -> None:
    """Keep this worker process's status file from Celery's signals (call before the worker starts);
    `fleet` is its CELERY_KEY_PREFIX."""
    from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown

    node = {"name": ""}

    def ready(sender: Any = None, **_: Any) -> None:
        node["name"] = getattr(sender, "hostname", "") or ""
        write_worker_status(fleet, node["name"], None)

    def started(**_: Any) -> None:
        write_worker_status(fleet, node["name"], time.time())

    def finished(**_: Any) -> None:
        write_worker_status(fleet, node["name"], None)

    def stopped(**_: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            _status_path(os.getpid()).unlink()

    worker_ready.connect(ready, weak=False)
    task_prerun.connect(started, weak=False)
    task_postrun.connect(finished, weak=False)
    worker_shutdown.connect(stopped, weak=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def worker_statuses(fleet: str) -> list[WorkerStatus]:
    """The status of every worker process of `fleet` running on this machine (or in this container)."""
    statuses = []
    for path in sorted(_status_folder().glob("kaika-worker-*.json")):
        try:
            pid = int(path.stem.removeprefix("kaika-worker-"))
            data = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        if data.get("fleet") == fleet and _alive(pid):
            statuses.append(WorkerStatus(pid, fleet, str(data.get("node") or ""), data.get("busy_since")))
    return statuses


def worker_problem(config: Any, *, now: float | None = None) -> str | None:
    """Why a worker on this machine is not healthy, or None when each answers a ping or is busy with a
    job younger than `config.visibility_timeout` (`config` is the fleet's `FleetConfig`)."""
    import redis

    from pipeline.executor.celery_jobs import make_celery_app

    statuses = worker_statuses(config.key_prefix)
    if not statuses:
        return "no kaika worker is running here (or it has not finished starting)."
    client = redis.Redis.from_url(config.redis_url, socket_connect_timeout=PING_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"cannot reach Redis at REDIS_URL ({error})."
    finally:
        client.close()
    app = make_celery_app(config, results=False)
    try:
        replies = app.control.ping(destination=[s.node for s in statuses], timeout=PING_TIMEOUT)
    finally:
        app.close()
    answered = {node for reply in replies for node in reply}
    for status in statuses:
        if status.node in answered:
            continue
        # Read again: a job may have begun while the ping was on its way.
        latest = next((s for s in worker_statuses(config.key_prefix) if s.pid == status.pid), status)
        now_ = time.time() if now is None else now
        if latest.busy_since is not None and now_ - latest.busy_since < config.visibility_timeout:
            continue
        if latest.busy_since is not None:
            return (
                f"worker {latest.node} has run one job for {now_ - latest.busy_since:.0f} s, longer than "
                f"CELERY_VISIBILITY_TIMEOUT ({config.visibility_timeout} s): it is stuck."
            )
        return f"worker {latest.node or status.pid} does not answer a ping through REDIS_URL."
    return None
