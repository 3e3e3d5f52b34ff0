"""The admin usage report: totals, leaderboard, kinds, failure rate, queue wait, jobs per day.

Jobs count in the window they were queued in, and usage is charged to the requester (the person
who pressed the button). Every figure is exact, and cheap at any history size:

- `usage_daily` holds running totals per UTC day (of queueing) and kind, updated in the same
  transaction as each job change. A window's whole days come from there; only its first, partial
  day is summed from the jobs themselves.
- The per-user leaderboard of 24h / 7d / 30d counts the window's jobs over a covering index; the
  whole past days of a window are counted once a day and kept in memory, as those counts never
  change. All-time reads the users' running `*_total` columns.

Every figure can be limited to the jobs asked for in some guilds (`guilds`: what a server's admin may see).
Those figures are summed from the jobs themselves over the `ix_jobs_guild` covering index, as the running
totals are not kept per guild; jobs asked for outside any server are never in a guild's figures.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, and_, case, cast, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.errors import parse_choice
from storage.models import Job, UsageDaily, User
from storage.records import JobKind, JobStatus, UsageReport, UserUsage, Window

WINDOW_LENGTH = {
    Window.DAY: timedelta(hours=24),
    Window.WEEK: timedelta(days=7),
    Window.MONTH: timedelta(days=30),
}
# usage_daily's figures, in the order the report reads them.
TOTALS = ["jobs", "images", "compute_seconds", "done", "failed", "cancelled", "started", "queue_seconds"]


def _job_totals() -> list:  # type: ignore[type-arg]
    """The TOTALS summed over jobs rows, in TOTALS order."""

    def with_status(status: JobStatus):  # type: ignore[no-untyped-def]
        return func.coalesce(func.sum(case((Job.status == status.value, 1), else_=0)), 0)

    return [
        func.count(),
        func.coalesce(func.sum(Job.image_count), 0),
        func.coalesce(func.sum(Job.compute_seconds), 0.0),
        with_status(JobStatus.DONE),
        with_status(JobStatus.FAILED),
        with_status(JobStatus.CANCELLED),
        func.count(Job.queue_seconds),
        func.coalesce(func.sum(Job.queue_seconds), 0.0),
    ]


class StatsRepository:
    """Reached as `storage.stats`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Per window: ((first whole day, today), requests per user over the whole days between).
        self._past_requests: dict[Window, tuple[tuple[datetime, datetime], Counter[int]]] = {}

    async def usage(
        self, window: Window | str = Window.ALL, *, top: int = 10, guilds: Collection[int] | None = None
    ) -> UsageReport:
        """The usage report for `window` ("24h", "7d", "30d", "all") with the `top` heaviest users; of the
        jobs asked for in `guilds` only, when given (None: every job)."""
        window = parse_choice(Window, window, "window")
        async with self._db.read() as session:
            if guilds is not None:
                return await self._in_guilds(session, window, guilds, top)
            if window is Window.ALL:
                return await self._all_time(session, top)
            return await self._windowed(session, window, top)

    async def queues(
        self, window: Window | str = Window.ALL, *, guilds: Collection[int] | None = None
    ) -> dict[str, tuple[int, float]]:
        """Per queue a job waited in ("fast", "relax": `params["queue"]`), its jobs and their generation
        seconds in `window` (of `guilds` only, when given); jobs recorded before queues existed are left out."""
        window = parse_choice(Window, window, "window")
        queue = Job.params["queue"].as_string()
        statement = select(queue, func.count(), func.coalesce(func.sum(Job.compute_seconds), 0.0)).where(
            queue.in_(("fast", "relax")), *self._jobs_in(window, guilds)
        )
        async with self._db.read() as session:
            rows = (await session.execute(statement.group_by(queue))).all()
        return {name: (int(jobs), float(seconds)) for name, jobs, seconds in rows}

    async def jobs_by_model(
        self, window: Window | str = Window.ALL, *, guilds: Collection[int] | None = None
    ) -> dict[str | None, int]:
        """Jobs queued in `window` (in `guilds` only, when given) per model they asked for (None: the default
        model), most used first."""
        window = parse_choice(Window, window, "window")
        statement = select(Job.model, func.count()).where(*self._jobs_in(window, guilds)).group_by(Job.model)
        async with self._db.read() as session:
            rows = (await session.execute(statement)).all()
        return dict(
            sorted(((model, int(jobs)) for model, jobs in rows), key=lambda row: (-row[1], row[0] or ""))
        )

    def _jobs_in(self, window: Window, guilds: Collection[int] | None) -> list:  # type: ignore[type-arg]
        """The conditions on jobs queued in `window` and, when `guilds` is given, asked for in one of them."""
        conditions = [] if guilds is None else [Job.guild_id.in_(sorted(guilds))]
        if window is not Window.ALL:
            conditions.append(Job.queued_at >= self._db.now() - WINDOW_LENGTH[window])
        return conditions

    async def _in_guilds(
        self, session: AsyncSession, window: Window, guilds: Collection[int], top: int
    ) -> UsageReport:
        """The report of the jobs asked for in `guilds`, summed from the jobs (over `ix_jobs_guild`): one
        pass for the totals per day and kind, one for the leaderboard, whose names are read for the leaders
        alone."""
        since = None if window is Window.ALL else self._db.now() - WINDOW_LENGTH[window]
        where = self._jobs_in(window, guilds)
        day = self._day(Job.queued_at).label("day")
        day_kind_rows = (
            await session.execute(select(day, Job.kind, *_job_totals()).where(*where).group_by(day, Job.kind))
        ).all()
        jobs_per_day: Counter[date] = Counter()
        for row in day_kind_rows:
            jobs_per_day[_as_date(row[0])] += row[2]
        jobs = func.count().label("jobs")
        per_member = (
            select(
                Job.requester_id.label("user_id"),
                jobs,
                func.coalesce(func.sum(Job.image_count), 0).label("images"),
                func.coalesce(func.sum(Job.compute_seconds), 0.0).label("compute"),
            )
            .where(*where)
            .group_by(Job.requester_id)
            .order_by(jobs.desc(), Job.requester_id)
            .limit(top)
            .subquery()
        )
        leaders = await session.execute(
            select(per_member, User.display_name)
            .join(User, User.id == per_member.c.user_id)
            .order_by(per_member.c.jobs.desc(), per_member.c.user_id)
        )
        leaderboard = [
            UserUsage(
                user_id=user,
                display_name=name,
                jobs=int(count),
                images=int(images),
                compute_seconds=float(compute),
            )
            for user, count, images, compute, name in leaders
        ]
        kind_rows = [row[1:] for row in day_kind_rows]
        return _report(window, since, kind_rows, sorted(jobs_per_day.items()), leaderboard)

    async def rebuild_totals(self) -> None:
        """Recompute the running totals from the jobs table (after a bulk import, or to repair them)."""
        self._past_requests.clear()
        day = self._day(Job.queued_at)
        async with self._db.write() as session:
            await session.execute(delete(UsageDaily))
            await session.execute(
                insert(UsageDaily).from_select(
                    ["day", "kind", *TOTALS], select(day, Job.kind, *_job_totals()).group_by(day, Job.kind)
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
        now = self._db.now()
        since = now - WINDOW_LENGTH[window]
        first_day = since.date()
        first_day_end = datetime.combine(first_day + timedelta(days=1), time(), UTC)
        first_day_rows = (
            await session.execute(
                select(Job.kind, *_job_totals())
                .where(and_(Job.queued_at >= since, Job.queued_at < first_day_end))
                .group_by(Job.kind)
            )
        ).all()
        whole_day_rows = (
            await session.execute(
                select(
                    UsageDaily.day, UsageDaily.kind, *(UsageDaily.__table__.c[name] for name in TOTALS)
                ).where(UsageDaily.day > first_day)
            )
        ).all()
        kind_rows = [*first_day_rows, *(row[1:] for row in whole_day_rows)]
        jobs_per_day = Counter({first_day: sum(row[1] for row in first_day_rows)})
        for day, _kind, jobs, *_ in whole_day_rows:
            jobs_per_day[_as_date(day)] += jobs
        leaderboard = await self._leaderboard(session, window, since, now, top)
        return _report(window, since, kind_rows, sorted(jobs_per_day.items()), leaderboard)

    async def _leaderboard(
        self, session: AsyncSession, window: Window, since: datetime, now: datetime, top: int
    ) -> list[UserUsage]:
        """The `top` requesters in [since, now], ranked by jobs, then user id.

        Requests per user over the window's whole past days never change (jobs are never removed
        and keep their queue time), so they are counted once per window per day and kept; only
        the partial first day and today are counted at each call. Images and compute seconds
        are then summed for the leaders alone.
        """
        first_day_end = datetime.combine(since.date() + timedelta(days=1), time(), UTC)
        today = datetime.combine(now.date(), time(), UTC)
        if first_day_end >= today:
            counts = await _requests_per_user(session, since, None)
        else:
            cached = self._past_requests.get(window)
            if cached is None or cached[0] != (first_day_end, today):
                cached = ((first_day_end, today), await _requests_per_user(session, first_day_end, today))
                self._past_requests[window] = cached
            counts = cached[1].copy()
            counts.update(await _requests_per_user(session, since, first_day_end))
            counts.update(await _requests_per_user(session, today, None))
        leaders = heapq.nsmallest(top, counts.items(), key=lambda item: (-item[1], item[0]))
        if not leaders:
            return []
        sums = {
            user: (name, images, compute)
            for user, name, images, compute in await session.execute(
                select(
                    Job.requester_id,
                    User.display_name,
                    func.coalesce(func.sum(Job.image_count), 0),
                    func.coalesce(func.sum(Job.compute_seconds), 0.0),
                )
                .join(User, User.id == Job.requester_id)
                .where(Job.requester_id.in_([user for user, _ in leaders]), Job.queued_at >= since)
                .group_by(Job.requester_id, User.display_name)
            )
        }
        return [
            UserUsage(
                user_id=user,
                display_name=sums[user][0],
                jobs=jobs,
                images=int(sums[user][1]),
                compute_seconds=float(sums[user][2]),
            )
            for user, jobs in leaders
        ]

    async def _all_time(self, session: AsyncSession, top: int) -> UsageReport:
        kind_rows = await session.execute(
            select(UsageDaily.kind, *(func.sum(UsageDaily.__table__.c[name]) for name in TOTALS)).group_by(
                UsageDaily.kind
            )
        )
        day_rows = await session.execute(
            select(UsageDaily.day, func.sum(UsageDaily.jobs))
            .group_by(UsageDaily.day)
            .order_by(UsageDaily.day)
        )
        leaders = await session.execute(
            select(User.id, User.display_name, User.jobs_total, User.images_total, User.compute_seconds_total)
            .where(User.jobs_total > 0)
            .order_by(User.jobs_total.desc(), User.id)
            .limit(top)
        )
        leaderboard = [
            UserUsage(
                user_id=user, display_name=name, jobs=jobs, images=images, compute_seconds=float(compute)
            )
            for user, name, jobs, images, compute in leaders
        ]
        return _report(Window.ALL, None, kind_rows.all(), day_rows.all(), leaderboard)

    def _day(self, column):  # type: ignore[no-untyped-def]
        """The UTC calendar day of a naive-UTC timestamp column, on either database."""
        if self._db.dialect == "sqlite":
            return func.date(column)
        return cast(column, Date)


def _report(
    window: Window, since: datetime | None, kind_rows, day_rows, leaderboard: list[UserUsage]
) -> UsageReport:  # type: ignore[no-untyped-def]
    """Add up rows of (kind, *TOTALS), a kind possibly more than once; `day_rows` are (day, jobs)."""
    by_kind: dict[JobKind, int] = {}
    sums = dict.fromkeys(TOTALS, 0.0)
    for kind, *figures in kind_rows:
        for name, value in zip(TOTALS, figures, strict=True):
            sums[name] += float(value or 0)
        if figures[0]:
            by_kind[JobKind(kind)] = by_kind.get(JobKind(kind), 0) + int(figures[0])
    started = int(sums["started"])
    return UsageReport(
        window=window,
        since=since,
        jobs=int(sums["jobs"]),
        images=int(sums["images"]),
        compute_seconds=sums["compute_seconds"],
        jobs_by_kind=by_kind,
        done=int(sums["done"]),
        failed=int(sums["failed"]),
        cancelled=int(sums["cancelled"]),
        mean_queue_seconds=sums["queue_seconds"] / started if started else None,
        leaderboard=leaderboard,
        jobs_per_day=[(_as_date(day), int(jobs)) for day, jobs in day_rows if jobs],
    )


async def _requests_per_user(session: AsyncSession, start: datetime, end: datetime | None) -> Counter[int]:
    """Jobs per requester queued in [start, end)."""
    # Grouping by `requester_id + 0`, not the bare column, keeps SQLite from walking the whole
    # requester index to avoid a sort; it then reads just the time range from the covering index.
    requester = (Job.requester_id + 0).label("requester")
    where = [Job.queued_at >= start] if end is None else [Job.queued_at >= start, Job.queued_at < end]
    rows = await session.execute(select(requester, func.count()).where(*where).group_by(requester))
    return Counter(dict(rows.all()))


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
