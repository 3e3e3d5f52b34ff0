"""Live progress of jobs started from the companion: a `JobFeed` is the job service's `Reporter` for one
job, and `stream` sends what it was told to a page as Server-Sent Events.

A feed keeps only the latest report (a queue position or a step with its preview; each one supersedes the
last) and the outcome, so a page opened or reloaded while the job runs is told where it is at once and
follows it from there. Feeds live in the app (`FEEDS`) while their job runs and a while after it ends; a
job whose feed this process does not hold (started from Discord, or before a restart) is followed from
storage instead, its status without previews. At start, `kaika web` resumes the jobs it started that a
previous run left unfinished (`resume_web_jobs`), each with a feed of its own.

Events: `waiting` {position}, `progress` {step, total, percent, preview (a PNG data URL, or null)},
`finished` {html: the result section}, `failed` {message}, `running` {} (followed from storage).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from service.jobs import Outcome
from service.recovery import recover_unfinished
from storage.records import FrontEnd, JobRecord, JobStatus
from web.site import SERVICES

log = logging.getLogger(__name__)

# How long a feed is kept after its job ended: a page that reloads then still gets the outcome from it.
KEPT_AFTER_END = 600.0
# A comment line this often keeps proxies from closing a quiet stream (a long queue, a slow model).
KEEPALIVE_SECONDS = 15.0
# How often a job this process does not follow is read again from storage.
STORAGE_POLL_SECONDS = 1.0


class JobFeed:
    """Implements `service.jobs.Reporter` for one job; any number of pages read it (`changes`)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.latest: tuple[str, dict[str, Any]] | None = None  # the last waiting or progress report
        self.outcome: tuple[str, dict[str, Any]] | None = None  # ("finished", {job_id}) or ("failed", {...})
        self.ended_at: float | None = None
        self.version = 0
        self._changed = asyncio.Event()

    async def waiting(self, position: int) -> None:
        self._tell(latest=("waiting", {"position": position}))

    async def progress(self, step: int, total: int, preview_png: bytes | None) -> None:
        preview = None
        if preview_png is not None:
            preview = "data:image/png;base64," + base64.b64encode(preview_png).decode()
        percent = round(100 * min(max(step, 0), max(total, 1)) / max(total, 1))
        report = {"step": step, "total": total, "percent": percent, "preview": preview}
        self._tell(latest=("progress", report))

    async def finished(self, outcome: Outcome) -> None:
        # The job shown as the result: a --video prompt's outcome is its video's job, a child of this one.
        self._tell(outcome=("finished", {"job_id": outcome.job.id}))

    async def failed(self, message: str) -> None:
        self._tell(outcome=("failed", {"message": message}))

    def _tell(
        self,
        *,
        latest: tuple[str, dict[str, Any]] | None = None,
        outcome: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        if latest is not None:
            self.latest = latest
        if outcome is not None:
            self.outcome = outcome
            self.ended_at = time.monotonic()
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, at_most: float, end: asyncio.Event) -> None:
        """Until the next report, `end`, or `at_most` seconds."""
        await _first(self._changed, end, at_most)


async def _first(one: asyncio.Event, other: asyncio.Event, at_most: float) -> None:
    """Until either event is set, or `at_most` seconds."""
    waits = [asyncio.ensure_future(one.wait()), asyncio.ensure_future(other.wait())]
    try:
        await asyncio.wait(waits, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


FEEDS = web.AppKey("job_feeds", dict[str, JobFeed])
# Set when the server stops: every open stream ends at once, so a page left open never holds up a shutdown
# (the browser reconnects to the next server by itself).
STREAMS_END = web.AppKey("job_streams_end", asyncio.Event)


def add_live_streams(app: web.Application) -> None:
    app[FEEDS] = {}
    app[STREAMS_END] = asyncio.Event()

    async def end_streams(app: web.Application) -> None:
        app[STREAMS_END].set()

    app.on_shutdown.append(end_streams)


def feeds(app: web.Application) -> dict[str, JobFeed]:
    return app[FEEDS]  # set up by add_live_streams


def new_feed(app: web.Application, job_id: str) -> JobFeed:
    """A feed for a job about to start; feeds of jobs that ended long ago are let go."""
    held = feeds(app)
    now = time.monotonic()
    for old_id in [
        i for i, f in held.items() if f.ended_at is not None and now - f.ended_at > KEPT_AFTER_END
    ]:
        del held[old_id]
    feed = held[job_id] = JobFeed(job_id)
    return feed


async def resume_web_jobs(app: web.Application) -> list[JobRecord]:
    """The jobs the web companion started that a previous `kaika web` left queued or running, resumed
    (`service.recovery`) with a feed each, so a page reopened on one follows it live; returns those that could
    not be resumed (failed with the reason, which their page shows)."""

    async def lost(job: JobRecord) -> None:
        log.info("Job %s left by a previous kaika web could not be resumed: %s", job.id, job.error)

    return await recover_unfinished(
        app[SERVICES].jobs, lambda job: new_feed(app, job.id), lost, front_end=FrontEnd.WEB
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def stream(
    request: web.Request, job: JobRecord, render_result: Callable[[JobRecord], Awaitable[str]]
) -> web.StreamResponse:
    """Server-Sent Events of `job` until it ends; `render_result(job)` is the HTML of its finished result."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    feed = feeds(request.app).get(job.id)
    storage = request.app[SERVICES].storage
    end = request.app[STREAMS_END]
    if feed is None:
        job = await _follow_storage(response, storage, job, end)
        if not end.is_set():
            await _send_outcome(response, job, render_result)
        return response
    seen = -1
    while feed.outcome is None:
        if end.is_set():
            return response
        if feed.version != seen:
            seen = feed.version
            if feed.latest is not None:
                await response.write(_event(*feed.latest))
        else:
            await response.write(b": still here\n\n")
        await feed.changed(KEEPALIVE_SECONDS, end)
    if feed.outcome[0] == "failed":
        await response.write(_event(*feed.outcome))
        return response
    done = await storage.jobs.get(feed.outcome[1].get("job_id", job.id))
    await _send_outcome(response, done or job, render_result)
    return response


async def _follow_storage(
    response: web.StreamResponse, storage: Any, job: JobRecord, end: asyncio.Event
) -> JobRecord:
    """A job this process is not following: its status from storage until it ends (or the server stops)."""
    told: JobStatus | None = None
    waited = 0.0
    while not job.status.finished and not end.is_set():
        if job.status is not told:
            told = job.status
            await response.write(_event("running" if told is JobStatus.RUNNING else "waiting", {}))
        elif waited >= KEEPALIVE_SECONDS:
            await response.write(b": still here\n\n")
            waited = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(end.wait(), STORAGE_POLL_SECONDS)
        waited += STORAGE_POLL_SECONDS
        again = await storage.jobs.get(job.id)
        if again is None:
            return job
        job = again
    return job


async def _send_outcome(
    response: web.StreamResponse, job: JobRecord, render_result: Callable[[JobRecord], Awaitable[str]]
) -> None:
    if job.status is JobStatus.DONE:
        await response.write(_event("finished", {"html": await render_result(job)}))
    elif job.status.finished:
        message = job.error or ("The job was cancelled." if job.status is JobStatus.CANCELLED else "")
        await response.write(_event("failed", {"message": message or "The job did not finish."}))
    else:  # deleted while it was followed
        await response.write(_event("failed", {"message": "This job no longer exists."}))
