"""The admin usage report: totals, leaderboard, kinds, failure rate, queue wait, jobs per day.

Windows of 24h / 7d / 30d are computed exactly from the jobs table (a covering index keeps that
fast). `Window.ALL` reads the running totals kept in step with every job change (`usage_daily`
and the users' `*_total` columns), so its cost does not grow with history. Jobs count in the window
they were queued in, and usage is charged to the requester (the person who pressed the button).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Date, case, cast, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.jobs import _parse
from storage.models import Job, UsageDaily, User
from storage.records import JobKind, JobStatus, UsageReport, UserUsage, Window

WINDOW_LENGTH = {
    Window.DAY: timedelta(hours=24),
    Window.WEEK: timedelta(days=7),
    Window.MONTH: timedelta(days=30),
}


class StatsRepository:
    """Reached as `storage.stats`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def usage(self, window: Window | str = Window.ALL, *, top: int = 10) -> UsageReport:
        """The usage report for `window` with the `top` heaviest users (by jobs requested)."""
        window = _parse(Window, window, "window")
        async with self._db.read() as session:
            if window is Window.ALL:
                return await self._all_time(session, top)
            return await self._windowed(session, window, top)

    async def rebuild_totals(self) -> None:
        """Recompute the running totals from the jobs table (after a bulk import, or to repair them)."""
        day = self._day(Job.queued_at)
        is_status = lambda status: func.sum(case((Job.status == status.value, 1), else_=0))  # noqa: E731
        async with self._db.write() as session:
            await session.execute(delete(UsageDaily))
            await session.execute(
                insert(UsageDaily).from_select(
                    [
                        "day",
                        "kind",
                        "jobs",
                        "started",
                        "done",
                        "failed",
                        "cancelled",
                        "images",
                        "compute_seconds",
                        "queue_seconds",
                    ],
                    select(
                        day,
                        Job.kind,
                        func.count(),
                        func.count(Job.started_at),
                        is_status(JobStatus.DONE),
                        is_status(JobStatus.FAILED),
                        is_status(JobStatus.CANCELLED),
                        func.coalesce(func.sum(Job.image_count), 0),
                        func.coalesce(func.sum(Job.compute_seconds), 0.0),
                        func.coalesce(func.sum(Job.queue_seconds), 0.0),
                    ).group_by(day, Job.kind),
                )
            )
            per_user = (
                select(
                    Job.requester_id.label("user_id"),
                    func.count().label("jobs"),
                    func.coalesce(func.sum(Job.image_count), 0).label("images"),
                    func.coalesce(func.sum(Job.compute_seconds), 0.0).label("compute"),
                )
                .group_by(Job.requester_id)
                .subquery()
            )
            await session.execute(
                update(User).values(jobs_total=0, images_total=0, compute_seconds_total=0.0)
            )
            await session.execute(
                update(User)
                .where(User.id == per_user.c.user_id)
                .values(
                    jobs_total=per_user.c.jobs,
                    images_total=per_user.c.images,
                    compute_seconds_total=per_user.c.compute,
                )
            )

    async def _windowed(self, session: AsyncSession, window: Window, top: int) -> UsageReport:
        since = self._db.now() - WINDOW_LENGTH[window]
        in_window = Job.queued_at >= since
        is_status = lambda status: func.sum(case((Job.status == status.value, 1), else_=0))  # noqa: E731
        rows = await session.execute(
            select(
                Job.kind,
                func.count(),
                func.coalesce(func.sum(Job.image_count), 0),
                func.coalesce(func.sum(Job.compute_seconds), 0.0),
                is_status(JobStatus.DONE),
                is_status(JobStatus.FAILED),
                is_status(JobStatus.CANCELLED),
                func.count(Job.queue_seconds),
                func.coalesce(func.sum(Job.queue_seconds), 0.0),
            )
            .where(in_window)
            .group_by(Job.kind)
        )
        leaders = await session.execute(
            select(
                Job.requester_id,
                func.count().label("jobs"),
                func.coalesce(func.sum(Job.image_count), 0),
                func.coalesce(func.sum(Job.compute_seconds), 0.0),
            )
            .where(in_window)
            .group_by(Job.requester_id)
            .order_by(func.count().desc(), Job.requester_id)
            .limit(top)
        )
        day = self._day(Job.queued_at)
        per_day = await session.execute(
            select(day, func.count()).where(in_window).group_by(day).order_by(day)
        )
        leaderboard = await _with_names(session, leaders.all())
        return _report(window, since, rows.all(), per_day.all(), leaderboard)

    async def _all_time(self, session: AsyncSession, top: int) -> UsageReport:
        rows = await session.execute(
            select(
                UsageDaily.kind,
                func.sum(UsageDaily.jobs),
                func.sum(UsageDaily.images),
                func.sum(UsageDaily.compute_seconds),
                func.sum(UsageDaily.done),
                func.sum(UsageDaily.failed),
                func.sum(UsageDaily.cancelled),
                func.sum(UsageDaily.started),
                func.sum(UsageDaily.queue_seconds),
            ).group_by(UsageDaily.kind)
        )
        per_day = await session.execute(
            select(UsageDaily.day, func.sum(UsageDaily.jobs))
            .group_by(UsageDaily.day)
            .order_by(UsageDaily.day)
        )
        leaders = await session.execute(
            select(User.id, User.jobs_total, User.images_total, User.compute_seconds_total, User.display_name)
            .where(User.jobs_total > 0)
            .order_by(User.jobs_total.desc(), User.id)
            .limit(top)
        )
        leaderboard = [
            UserUsage(
                user_id=user, display_name=name, jobs=jobs, images=images, compute_seconds=float(compute)
            )
            for user, jobs, images, compute, name in leaders
        ]
        return _report(Window.ALL, None, rows.all(), per_day.all(), leaderboard)

    def _day(self, column):  # type: ignore[no-untyped-def]
        """The UTC calendar day of a naive-UTC timestamp column, on either database."""
        if self._db.dialect == "sqlite":
            return func.date(column)
        return cast(column, Date)


def _report(window: Window, since, kind_rows, day_rows, leaderboard: list[UserUsage]) -> UsageReport:  # type: ignore[no-untyped-def]
    by_kind: dict[JobKind, int] = {}
    jobs = images = done = failed = cancelled = started = 0
    compute = queue = 0.0
    for kind, k_jobs, k_images, k_compute, k_done, k_failed, k_cancelled, k_started, k_queue in kind_rows:
        by_kind[JobKind(kind)] = int(k_jobs)
        jobs += int(k_jobs)
        images += int(k_images or 0)
        compute += float(k_compute or 0)
        done += int(k_done or 0)
        failed += int(k_failed or 0)
        cancelled += int(k_cancelled or 0)
        started += int(k_started or 0)
        queue += float(k_queue or 0)
    return UsageReport(
        window=window,
        since=since,
        jobs=jobs,
        images=images,
        compute_seconds=compute,
        jobs_by_kind=by_kind,
        done=done,
        failed=failed,
        cancelled=cancelled,
        mean_queue_seconds=queue / started if started else None,
        leaderboard=leaderboard,
        jobs_per_day=[(_as_date(day), int(count)) for day, count in day_rows],
    )


async def _with_names(session: AsyncSession, rows) -> list[UserUsage]:  # type: ignore[no-untyped-def]
    ids = [row[0] for row in rows]
    names = (
        dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all())
        if ids
        else {}
    )
    return [
        UserUsage(
            user_id=user,
            display_name=names.get(user, ""),
            jobs=jobs,
            images=int(images),
            compute_seconds=float(compute),
        )
        for user, jobs, images, compute in rows
    ]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
